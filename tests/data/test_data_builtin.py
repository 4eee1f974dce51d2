"""The in-memory data sets: scikit-learn digits (embedded default) and synthetic."""

import numpy as np
import torch

from janus.data import build_scenario
from janus.data.digits import _digits_tensors, load_raw_digits
from janus.data.synthetic import synthetic_tensors


def test_digits_split_values_and_cache(fx):
    scenario = build_scenario(fx.config(dataset="digits", tasks=5, val_fraction=0.0, image_size=16), seed=0)
    assert scenario.num_classes == 10 and scenario.class_names == tuple("0123456789")
    train_sizes = sum(len(t.train) for t in scenario.tasks)
    test_sizes = sum(len(t.test) for t in scenario.tasks)
    test_labels = np.concatenate([t.test.targets for t in scenario.tasks])
    train_labels = np.concatenate([t.train.targets for t in scenario.tasks])
    counts = np.bincount(test_labels) + np.bincount(train_labels)
    assert counts.sum() == 1797 and train_sizes + test_sizes == 1797
    assert np.array_equal(np.bincount(test_labels), np.round(0.2 * counts).astype(int))  # stratified 80/20
    x, _ = scenario.tasks[0].test[0]
    assert x.shape == (3, 16, 16) and x.min() >= 0 and x.max() <= 1 and x.max() > 0.5
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])  # grey replicated to 3 channels
    assert _digits_tensors(16) is _digits_tensors(16)  # computed once per process
    again = build_scenario(fx.config(dataset="digits", tasks=2, image_size=16), seed=3)
    assert again.tasks[0].test.source.images.data_ptr() == scenario.tasks[0].test.source.images.data_ptr()


def test_digits_fast_path_matches_load_digits():
    from sklearn.datasets import load_digits

    raw = load_digits()
    images, labels = load_raw_digits()
    assert np.array_equal(images, raw.images) and np.array_equal(labels, raw.target)
    train_x, train_y, test_x, test_y = _digits_tensors(8)  # native size: no resampling
    assert len(train_x) + len(test_x) == 1797 and train_x.shape[1:] == (1, 8, 8)
    pooled = torch.cat([train_x, test_x])[:, 0] * 16
    order = np.lexsort(pooled.flatten(1).numpy().T)  # same multiset of images as the raw data
    raw_order = np.lexsort(raw.images.reshape(-1, 64).T)
    assert np.allclose(pooled.numpy()[order], raw.images[raw_order])
    assert np.array_equal(np.concatenate([train_y, test_y])[order], raw.target[raw_order])


def test_synthetic_deterministic_and_class_conditional(fx):
    a = synthetic_tensors(5, 30, 10, 12, 0)
    b = synthetic_tensors.__wrapped__(5, 30, 10, 12, 0)
    c = synthetic_tensors.__wrapped__(5, 30, 10, 12, 1)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    train_x, train_y, test_x, test_y = a
    assert train_x.shape == (150, 3, 12, 12) and np.bincount(test_y).tolist() == [10] * 5
    assert train_x.min() >= 0 and train_x.max() <= 1
    means = torch.stack([train_x[torch.from_numpy(train_y == k)].mean(0) for k in range(5)])
    predicted = torch.cdist(test_x.flatten(1), means.flatten(1)).argmin(1).numpy()
    assert (predicted == test_y).mean() > 0.95  # classes are separable
    scenario = build_scenario(fx.config(dataset="synthetic", synthetic_classes=4, tasks=2), seed=0)
    assert [len(t.train) + len(t.val) for t in scenario.tasks] == [80, 80]
