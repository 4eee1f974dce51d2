"""ImageFolder-style listing: class folders in sorted order, image files below them (docs/protocol.md §1.3, §1.5).

Labels follow torchvision's ImageFolder: the index of the class folder name in sorted order.
"""

from __future__ import annotations

import os
from pathlib import Path

# torchvision.datasets.folder.IMG_EXTENSIONS, so the same files count as images.
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def class_dirs(base: Path) -> list[str]:
    """Names of the sub-folders of `base`, sorted (ImageFolder's class order); hidden folders skipped."""
    with os.scandir(base) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def list_images(base: Path, class_name: str) -> list[str]:
    """Image files below `base/class_name`, as sorted POSIX paths relative to `base` (recursive, like ImageFolder)."""
    found = []
    for folder, subdirs, files in os.walk(base / class_name, followlinks=True):
        subdirs.sort()
        rel = Path(folder).relative_to(base)
        found.extend((rel / name).as_posix() for name in files if name.lower().endswith(IMG_EXTENSIONS))
    return sorted(found)


def list_classes(base: Path, classes: list[str]) -> tuple[list[str], list[int]]:
    """All images of `classes` below `base`, with label = position of the class in `classes`."""
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        files = list_images(base, name)
        paths.extend(files)
        labels.extend([label] * len(files))
    return paths, labels
