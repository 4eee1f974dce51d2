"""CIFAR-100 from the official python pickles (docs/protocol.md §1.2)."""

import numpy as np
import pytest
import torch

from janus.data import build_scenario
from janus.errors import UserError


def test_loads_pickles_with_names_labels_and_pixels(fx, tmp_path):
    fx.make_cifar(tmp_path, classes=4, train_per_class=6, test_per_class=3)
    cfg = fx.config(dataset="cifar100", root=str(tmp_path), tasks=2, val_fraction=0.0, image_size=32)
    scenario = build_scenario(cfg, seed=0)
    assert scenario.name == "cifar100" and scenario.num_classes == 4
    assert scenario.class_names == ("name0", "name1", "name2", "name3")
    assert [len(t.train) for t in scenario.tasks] == [12, 12] and [len(t.test) for t in scenario.tasks] == [6, 6]
    task = scenario.tasks[1]
    x, y = task.test[0]
    assert x.shape == (3, 32, 32) and y in (2, 3)
    # channel-major rows must come out as (R, G, B) = (10c, 100, 200)
    assert torch.allclose(x.mean(dim=(1, 2)), torch.tensor([10 * y, 100, 200]) / 255, atol=1e-6)
    assert scenario.info["source"].endswith("cifar-100-python")


def test_cifar_test_transform_resizes_to_image_size(fx, tmp_path):
    fx.make_cifar(tmp_path, classes=2, train_per_class=3, test_per_class=1)
    cfg = fx.config(dataset="cifar100", root=str(tmp_path), tasks=1, image_size=48)
    task = build_scenario(cfg, seed=0).tasks[0]
    assert task.test[0][0].shape == (3, 48, 48) and task.train[0][0].shape == (3, 48, 48)
    assert np.bincount(task.val.targets).tolist() == [1, 1]  # round(0.1 * 3) -> at least one per class


def test_missing_pickle_names_the_file(fx, tmp_path):
    fx.make_cifar(tmp_path)
    (tmp_path / "cifar-100-python" / "test").unlink()
    with pytest.raises(UserError, match=r"cifar-100-python/test: expected cifar-100-python/\{train,test,meta\}"):
        build_scenario(fx.config(dataset="cifar100", root=str(tmp_path), tasks=2), seed=0)
