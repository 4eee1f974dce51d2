"""scikit-learn's bundled handwritten digits: real data, no download; the embedded default data set.

1,797 grey 8×8 images of 10 classes, scaled from 0..16 to [0, 1], resized once to image_size (bilinear) and
kept in memory with one channel, expanded to three on access. The train/test split is a fixed stratified
80/20 split (sklearn `train_test_split`, random_state 0) that no config or seed changes.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from janus.data.sources import SourceData, TensorSource

SPLIT_SEED = 0
TEST_FRACTION = 0.2


def build_digits(cfg, root: Path) -> SourceData:
    """The digits data set at cfg.image_size; `root` is unused (the data ships with scikit-learn)."""
    train_x, train_y, test_x, test_y = _digits_tensors(int(cfg.image_size))
    return SourceData(
        name="digits",
        class_names=tuple(str(d) for d in range(10)),
        train=TensorSource(train_x, train_y),
        test=TensorSource(test_x, test_y),
        style="tensor",
        info={"source": "sklearn.datasets.load_digits", "split": "stratified 80/20, random_state 0"},
    )


@lru_cache(maxsize=4)
def _digits_tensors(size: int) -> tuple[torch.Tensor, np.ndarray, torch.Tensor, np.ndarray]:
    """Decode, scale, resize and split once per image size, cached for the life of the process."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    if size != images.shape[-1]:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    images = images.clamp_(0.0, 1.0).contiguous()
    labels = digits.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    return images[train_idx], labels[train_idx], images[test_idx], labels[test_idx]
