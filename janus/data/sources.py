"""Raw samples of one data set before task formation: class names, train/test sources, transform style.

A *source* is an indexable collection with integer `labels` (the data set's own class ids) and `load(i)`,
which returns a PIL image or a float tensor [C, H, W] in [0, 1]. Task formation (scenario.py) selects indices
of a source, renames labels and attaches transforms; sources never change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from janus.errors import UserError


class Source(Protocol):
    labels: np.ndarray

    def __len__(self) -> int: ...

    def load(self, index: int) -> Any: ...


@dataclass(frozen=True)
class SourceData:
    """One data set as a builder returns it.

    `style` picks the transforms (docs/protocol.md §4): "imagenet" (files; test Resize(256/224·size) + CenterCrop),
    "cifar" (small arrays; test Resize(size)) or "tensor" (in-memory tensors already at image_size).
    """

    name: str
    class_names: tuple[str, ...]
    train: Source
    test: Source
    style: str
    crop_scale: tuple[float, float] = (0.08, 1.0)
    flip: bool = True             # False where a mirror image changes the label (digits)
    info: dict = field(default_factory=dict)


class FileSource:
    """Image files below `base` (relative paths), decoded with PIL and converted to RGB."""

    def __init__(self, base: Path, paths: Sequence[str], labels: Sequence[int]):
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
        self.base = Path(base)
        self.paths = tuple(paths)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> Image.Image:
        path = self.base / self.paths[index]
        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except (OSError, SyntaxError, ValueError) as error:  # PIL's UnidentifiedImageError is an OSError
            raise UserError(f"cannot read image {path} ({type(error).__name__}: {error}); replace or remove "
                            "the file") from None


class ArraySource:
    """uint8 images N×H×W×3 in memory (CIFAR), handed out as PIL images like torchvision's CIFAR100."""

    def __init__(self, images: np.ndarray, labels: Sequence[int]):
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"expected uint8 N×H×W×3 images, got {images.dtype} {images.shape}")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, index: int) -> Image.Image:
        return Image.fromarray(self.images[index])


class TensorSource:
    """float32 tensors N×C×H×W in [0, 1] (C = 1 or 3), handed out as stored; the "tensor" transforms
    expand one channel to three (transforms.ToThreeChannels)."""

    def __init__(self, images: torch.Tensor, labels: Sequence[int]):
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected N×1×H×W or N×3×H×W tensors, got {tuple(images.shape)}")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, index: int) -> torch.Tensor:
        return self.images[index]
