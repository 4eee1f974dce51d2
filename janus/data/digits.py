"""scikit-learn's bundled handwritten digits: real data, no download; the embedded default data set.

1,797 grey 8×8 images of 10 classes, scaled from 0..16 to [0, 1], resized once to image_size (bilinear) and
kept in memory with one channel, expanded to three by the transforms after augmentation. The train/test split is a fixed per-class
stratified 80/20 split (seed 0, the same rule as the ImageNet-R split) that no config or run seed changes.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from janus.data.sources import SourceData, TensorSource
from janus.data.splits import STREAM_DATASET_SPLIT, stratified_split

SPLIT_SEED = 0
DIGIT_CROP_SCALE = (0.8, 1.0)  # mild crops that keep the whole digit; no flips (transforms.py)
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
        crop_scale=DIGIT_CROP_SCALE,
        flip=False,
        info={"source": "sklearn.datasets.load_digits", "split": "per-class stratified 80/20, seed 0"},
    )


@lru_cache(maxsize=4)
def _digits_tensors(size: int) -> tuple[torch.Tensor, np.ndarray, torch.Tensor, np.ndarray]:
    """Decode, scale, resize and split once per image size, cached for the life of the process."""
    raw, labels = load_raw_digits()
    images = torch.from_numpy(raw.astype(np.float32) / 16.0).unsqueeze(1)
    if size != images.shape[-1]:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    images = images.clamp_(0.0, 1.0).contiguous()
    train_idx, test_idx = stratified_split(labels, TEST_FRACTION, SPLIT_SEED, STREAM_DATASET_SPLIT)
    return images[train_idx], labels[train_idx], images[test_idx], labels[test_idx]


def load_raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images N×8×8 with values 0..16, labels). Reads the CSV that `load_digits` reads straight from the
    installed scikit-learn, which skips the ~1 s import of sklearn.datasets; falls back to `load_digits`."""
    spec = importlib.util.find_spec("sklearn")
    csv = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if csv is not None and csv.is_file():
        table = np.loadtxt(csv, delimiter=",")
        return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images, digits.target.astype(np.int64)
