"""Tiny on-disk fixtures in each data set's real format, built in tmp_path (no downloads)."""

from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from janus.config import DataConfig

# Solid colours far apart, so a decoded JPEG still tells which class folder it came from.
PALETTE = [(230, 20, 20), (20, 230, 20), (20, 20, 230), (230, 230, 20), (20, 230, 230), (230, 20, 230)]


def data_config(**overrides) -> DataConfig:
    """The real DataConfig with test-sized defaults."""
    base = {"image_size": 16}
    base.update(overrides)
    return DataConfig(**base)


def write_jpeg(path: Path, color=(128, 128, 128), size=(20, 14)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format="JPEG", quality=95)


def color_class(image) -> int:
    """Index in PALETTE of the colour nearest to the mean of a [3, H, W] tensor in [0, 1]."""
    mean = image.reshape(3, -1).mean(dim=1).numpy() * 255
    return int(np.argmin([np.abs(mean - np.array(c)).sum() for c in PALETTE]))


def make_imagenet_r(root: Path, counts: dict[str, int]) -> Path:
    """`<root>/imagenet-r/<wnid>/art_<i>.jpg`, class k coloured PALETTE[k] (k = sorted position)."""
    base = root / "imagenet-r"
    for k, wnid in enumerate(sorted(counts)):
        for i in range(counts[wnid]):
            write_jpeg(base / wnid / f"art_{i}.jpg", PALETTE[k])
    (base / "README.txt").write_text("not an image folder")
    return base


def make_cifar(root: Path, classes: int = 4, train_per_class: int = 6, test_per_class: int = 3) -> Path:
    """The official pickles; every image of class c has pixels (R, G, B) = (10c, 100, 200)."""
    base = root / "cifar-100-python"
    base.mkdir(parents=True)
    for name, per_class in (("train", train_per_class), ("test", test_per_class)):
        labels = [c for _ in range(per_class) for c in range(classes)]  # interleaved, like the real files
        planes = [np.stack([np.full(1024, 10 * c), np.full(1024, 100), np.full(1024, 200)]) for c in labels]
        data = np.stack(planes).reshape(len(labels), 3072).astype(np.uint8)
        with open(base / name, "wb") as f:
            pickle.dump({b"data": data, b"fine_labels": labels, b"filenames": [b"x"] * len(labels)}, f)
    with open(base / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [f"name{c}".encode() for c in range(classes)]}, f)
    return base


def make_imagenet_tree(base: Path, wnids: list[str], train_per_class: int = 2, val_per_class: int = 1) -> Path:
    """`<base>/{train,val}/<wnid>/*.JPEG`; class at sorted position k coloured PALETTE[k % 6]."""
    for k, wnid in enumerate(sorted(wnids)):
        for split, n in (("train", train_per_class), ("val", val_per_class)):
            for i in range(n):
                write_jpeg(base / split / wnid / f"{wnid}_{i}.JPEG", PALETTE[k % len(PALETTE)], size=(6, 6))
    return base


def make_domainnet(root: Path, domains: tuple[str, ...], classes: list[str], train=3, test=1) -> Path:
    """`<root>/domainnet/<domain>/<class>/*.jpg` plus the official `<domain>_{train,test}.txt` lists."""
    base = root / "domainnet"
    for domain in domains:
        for split, n in (("train", train), ("test", test)):
            lines = []
            for label, name in enumerate(classes):
                for i in range(n):
                    rel = f"{domain}/{name}/{domain}_{label:03d}_{split}{i}.jpg"
                    write_jpeg(base / rel, PALETTE[label % len(PALETTE)], size=(8, 8))
                    lines.append(f"{rel} {label}")
            (base / f"{domain}_{split}.txt").write_text("\n".join(lines) + "\n")
    return base


@pytest.fixture
def fx():
    """The helpers above, as a fixture (test modules do not import conftest by name)."""
    return SimpleNamespace(
        config=data_config, write_jpeg=write_jpeg, color_class=color_class, palette=PALETTE,
        make_imagenet_r=make_imagenet_r, make_cifar=make_cifar, make_imagenet_tree=make_imagenet_tree,
        make_domainnet=make_domainnet,
    )
