"""Class-conditional synthetic images for tests, generated in memory.

Each class owns a fixed random low-frequency pattern (a 4×4 grid of random RGB values upsampled bilinearly to
image_size); a sample is its class pattern plus Gaussian pixel noise, clipped to [0, 1]. Everything is drawn
from one torch.Generator seeded with cfg.split_seed, so the data set is fixed given its parameters and never
moves with the run seed.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from janus.data.sources import SourceData, TensorSource
from janus.errors import UserError

GRID = 4
NOISE_STD = 0.15  # patterns differ by ~0.4 per pixel on average: separable, yet not trivially so per pixel


def build_synthetic(cfg, root: Path) -> SourceData:
    """`cfg.synthetic_classes` classes with per-class train/test counts from the config; `root` is unused."""
    params = (
        int(cfg.synthetic_classes),
        int(cfg.synthetic_train_per_class),
        int(cfg.synthetic_test_per_class),
        int(cfg.image_size),
        int(cfg.split_seed),
    )
    if min(params[:3]) < 1:
        raise UserError(
            f"synthetic data needs at least one class and one train/test image per class, got {params[:3]}"
        )
    train_x, train_y, test_x, test_y = synthetic_tensors(*params)
    return SourceData(
        name="synthetic",
        class_names=tuple(f"class_{c}" for c in range(params[0])),
        train=TensorSource(train_x, train_y),
        test=TensorSource(test_x, test_y),
        style="tensor",
        info={"source": "generated", "seed": params[4], "noise_std": NOISE_STD},
    )


@lru_cache(maxsize=8)
def synthetic_tensors(
    num_classes: int, train_per_class: int, test_per_class: int, size: int, seed: int
) -> tuple[torch.Tensor, np.ndarray, torch.Tensor, np.ndarray]:
    """Generate (train_x, train_y, test_x, test_y); images are float32 N×3×size×size in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    grid = torch.rand(num_classes, 3, GRID, GRID, generator=gen)
    patterns = F.interpolate(grid, size=(size, size), mode="bilinear", align_corners=False)

    def draw(per_class: int) -> tuple[torch.Tensor, np.ndarray]:
        noise = torch.randn(num_classes, per_class, 3, size, size, generator=gen) * NOISE_STD
        images = (patterns[:, None] + noise).clamp_(0.0, 1.0).reshape(-1, 3, size, size)
        return images, np.repeat(np.arange(num_classes, dtype=np.int64), per_class)

    train_x, train_y = draw(train_per_class)
    test_x, test_y = draw(test_per_class)
    return train_x, train_y, test_x, test_y
