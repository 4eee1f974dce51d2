"""Task formation on in-memory data: class order, relabelling, tasks, validation split, loaders."""

import numpy as np
import pytest
import torch

from janus.data import DATASETS, Scenario, Task, build_scenario, make_loader
from janus.data.scenario import class_order
from janus.errors import UserError


def synthetic(fx, **kw):
    base = {"dataset": "synthetic", "synthetic_classes": 6, "synthetic_train_per_class": 20,
            "synthetic_test_per_class": 5, "tasks": 3, "image_size": 8}
    base.update(kw)
    return fx.config(**base)


def test_pycil_seeded_order_check_values():
    assert class_order(100, "seeded", 1993)[:6].tolist() == [68, 56, 78, 8, 23, 84]
    assert class_order(200, "seeded", 1993)[:6].tolist() == [168, 136, 51, 9, 183, 101]
    assert class_order(5, "identity", 1993).tolist() == [0, 1, 2, 3, 4]
    state = np.random.get_state()[1].copy()
    class_order(100, "seeded", 7)
    assert np.array_equal(np.random.get_state()[1], state)  # global numpy RNG untouched


def test_seeded_order_uses_run_seed_unless_order_seed_set(fx):
    cfg = synthetic(fx, synthetic_classes=100, synthetic_train_per_class=2, synthetic_test_per_class=1,
                    tasks=10, class_order="seeded", val_fraction=0.0)
    assert build_scenario(cfg, seed=1993).class_order[:6] == (68, 56, 78, 8, 23, 84)
    fixed = build_scenario(synthetic(fx, synthetic_classes=100, synthetic_train_per_class=2,
                                     synthetic_test_per_class=1, tasks=10, class_order="seeded",
                                     order_seed=1993, val_fraction=0.0), seed=0)
    assert fixed.class_order[:6] == (68, 56, 78, 8, 23, 84)
    assert build_scenario(synthetic(fx), seed=1993).class_order == tuple(range(6))  # identity ignores seed


def test_tasks_own_contiguous_relabelled_ranges(fx):
    scenario = build_scenario(synthetic(fx, class_order="seeded", order_seed=3), seed=0)
    assert isinstance(scenario, Scenario) and scenario.num_classes == 6 and len(scenario.tasks) == 3
    order = np.array(scenario.class_order)
    assert sorted(order.tolist()) == list(range(6)) and order.tolist() != list(range(6))
    assert scenario.class_names == tuple(f"class_{c}" for c in order)
    for t, task in enumerate(scenario.tasks):
        assert isinstance(task, Task)
        assert (task.index, task.offset, task.num_classes, task.classes) == (t, 2 * t, 2, (2 * t, 2 * t + 1))
        for split in (task.train, task.val, task.test, task.train_eval):
            original = split.source.labels[split.indices]
            assert np.array_equal(order[split.targets], original)  # label k <-> original class order[k]
            assert set(split.targets.tolist()) == set(task.classes)
        x, y = task.test[0]
        assert x.dtype == torch.float32 and x.shape == (3, 8, 8) and y == int(task.test.targets[0])
    assert sum(len(t.test) for t in scenario.tasks) == 6 * 5


def test_uneven_tasks_error_lists_valid_counts(fx):
    with pytest.raises(UserError, match=r"valid --tasks values: 1, 2, 3, 6$"):
        build_scenario(synthetic(fx, tasks=4), seed=0)


def test_unknown_names_are_user_errors(fx):
    assert set(DATASETS) == {"cifar100", "imagenet-r", "imagenet100", "domainnet", "digits", "fashion-mnist",
                             "synthetic"}
    with pytest.raises(UserError, match="choose one of: cifar100, imagenet-r, imagenet100, domainnet, digits"):
        build_scenario(fx.config(dataset="mnist"), seed=0)
    for bad in ({"class_order": "random"}, {"normalization": "imagenet"}, {"val_fraction": 1.0},
                {"max_train_per_class": 0}, {"split_file": "x.yaml"}):
        with pytest.raises(UserError):
            build_scenario(synthetic(fx, **bad), seed=0)


def test_val_split_stratified_disjoint_and_fixed_across_run_seeds(fx):
    a = build_scenario(synthetic(fx, val_fraction=0.25), seed=0)
    b = build_scenario(synthetic(fx, val_fraction=0.25, class_order="seeded"), seed=5)
    for task in a.tasks:
        train, val, test = task.train, task.val, task.test
        assert val.source is train.source and test.source is not train.source  # never from test
        assert not set(train.indices) & set(val.indices)
        assert np.bincount(val.targets - task.offset).tolist() == [5, 5]  # round(0.25 * 20) per class
        assert np.bincount(train.targets - task.offset).tolist() == [15, 15]
        assert np.array_equal(task.train_eval.indices, train.indices)
    val_a = np.sort(np.concatenate([t.val.indices for t in a.tasks]))
    val_b = np.sort(np.concatenate([t.val.indices for t in b.tasks]))
    assert np.array_equal(val_a, val_b)  # neither the run seed nor the class order moves the val split


def test_zero_val_fraction_gives_empty_val(fx):
    scenario = build_scenario(synthetic(fx, val_fraction=0.0), seed=0)
    task = scenario.tasks[0]
    assert len(task.val) == 0 and len(task.train) == 40
    assert list(make_loader(task.val, 4, shuffle=False)) == []


def test_per_class_caps(fx):
    scenario = build_scenario(synthetic(fx, max_train_per_class=7, max_test_per_class=2, val_fraction=0.3),
                              seed=0)
    task = scenario.tasks[1]
    assert np.bincount(task.train.targets - 2).tolist() == [5, 5]  # 7 kept, round(0.3 * 7) = 2 to val
    assert np.bincount(task.val.targets - 2).tolist() == [2, 2]
    assert np.bincount(task.test.targets - 2).tolist() == [2, 2]


def test_seen_and_train_eval_uses_test_transform(fx):
    scenario = build_scenario(synthetic(fx), seed=0)
    assert [t.index for t in scenario.seen(scenario.tasks[1])] == [0, 1]
    assert [t.index for t in scenario.seen(2)] == [0, 1, 2]
    task = scenario.tasks[0]
    source_image = task.train.source.load(int(task.train.indices[3]))
    assert torch.equal(task.train_eval[3][0], source_image)  # tensors are stored at image_size already
    digits = build_scenario(fx.config(dataset="digits", tasks=2, image_size=8), seed=0).tasks[0]
    grey = digits.train_eval.source.load(int(digits.train_eval.indices[0]))
    assert grey.shape == (1, 8, 8) and torch.equal(digits.train_eval[0][0], grey.expand(3, 8, 8))
    assert digits.train[0][0].shape == (3, 8, 8)
    torch.manual_seed(0)
    augmented = torch.stack([task.train[3][0] for _ in range(4)])
    assert not all(torch.equal(augmented[0], a) for a in augmented[1:])


def test_backbone_normalization(fx):
    mean_std = ((0.5, 0.4, 0.3), (0.2, 0.25, 0.5))
    plain = build_scenario(synthetic(fx), seed=0).tasks[0].test[0][0]
    normed = build_scenario(synthetic(fx, normalization="backbone"), seed=0, mean_std=mean_std).tasks[0].test[0][0]
    expected = (plain - torch.tensor(mean_std[0])[:, None, None]) / torch.tensor(mean_std[1])[:, None, None]
    assert torch.allclose(normed, expected, atol=1e-6)
    assert plain.min() >= 0 and plain.max() <= 1
    with pytest.raises(UserError, match="mean/std"):
        build_scenario(synthetic(fx, normalization="backbone"), seed=0)


def test_make_loader_order_is_deterministic_given_seed(fx):
    dataset = build_scenario(synthetic(fx), seed=0).tasks[0].train_eval

    def labels(seed):
        torch.manual_seed(seed + 100)  # the global RNG must not matter
        return [y.tolist() for _, y in make_loader(dataset, 8, shuffle=True, seed=seed)]

    assert labels(1) == labels(1)
    assert labels(1) != labels(2)
    batches = list(make_loader(dataset, 16, shuffle=False, drop_last=True))
    assert len(batches) == len(dataset) // 16 and batches[0][0].shape == (16, 3, 8, 8)
    assert batches[0][1].tolist() == dataset.targets[:16].tolist()


def test_augmented_batches_repeat_given_seed_with_workers(fx):
    dataset = build_scenario(synthetic(fx), seed=0).tasks[0].train

    def first_batch(seed):
        return next(iter(make_loader(dataset, 8, shuffle=True, seed=seed, num_workers=2)))

    (xa, ya), (xb, yb), (xc, _) = first_batch(3), first_batch(3), first_batch(4)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)  # crops drawn in workers seeded from the generator
    assert not torch.equal(xa, xc)
