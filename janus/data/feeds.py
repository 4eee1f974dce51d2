"""What each kind of task dataset reads, and where its images are finished (README "GPU data path").

A `Feed` is a source, the loader-side transform and the device-side stage for one kind of dataset: train,
eval (the train split with the test transform: validation and post-task passes) and test. The CPU default
is the PIL or tensor transforms to float in the loader. data.uint8_transfer (auto: on CUDA) stops the image
styles at uint8 and finishes on the device; data.cache=on reads the decoded views (janus.data.cache; the
train split's views cover its train and validation images) and, with data.augment_on=device, crops and
flips on the device too; on CUDA the views that need no CPU transform are held in GPU memory when they fit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms import v2

from janus.data.cache import CachedSource, cache_root, open_views
from janus.data.device import AugmentSpec, DeviceStage
from janus.data.sources import Source, SourceData
from janus.data.transforms import MeanStd, build_transforms, cache_views, to_float
from janus.errors import UserError


@dataclass(frozen=True)
class Feed:
    """How one kind of dataset (train, train-split evaluation, test) reads its images."""

    source: Source
    transform: Callable | None
    stage: DeviceStage | None = None


def make_feeds(data: SourceData, cfg, indices, mean_std: MeanStd | None, device: torch.device,
               workers: int) -> tuple[dict[str, Feed], dict]:
    """The "train", "eval" and "test" feeds of a data set for `device`, and what scenario.info records about
    them (nothing on the CPU default)."""
    size, image = int(cfg.image_size), data.style != "tensor"
    if cfg.augment_on == "device" and not image:
        raise UserError(f"data.augment_on=device crops cached uint8 images; {data.name} is in-memory tensor data, "
                        "which is never cached: use data.augment_on=loader")
    uint8 = image and (cfg.uint8_transfer == "on" or cfg.augment_on == "device"
                       or (cfg.uint8_transfer == "auto" and device.type == "cuda"))
    train_tf, test_tf = build_transforms(data.style, size, cfg.normalization, mean_std, tuple(data.crop_scale),
                                         data.flip, uint8=uint8)
    stats = None if cfg.normalization == "none" else tuple(tuple(float(v) for v in part) for part in mean_std)
    stage = DeviceStage(stats) if uint8 else None
    if not (image and cfg.cache == "on"):
        feeds = {"train": Feed(data.train, train_tf, stage), "eval": Feed(data.train, test_tf, stage),
                 "test": Feed(data.test, test_tf, stage)}
        return feeds, {"uint8_transfer": True} if uint8 else {}
    train_idx, val_idx, test_idx = indices
    root, views = cache_root(cfg.cache_dir), cache_views(data.style, size)
    train_views = open_views(data.train, np.concatenate([train_idx, val_idx]), views, dataset=data.name,
                             split="train", root=root, workers=workers)
    test_view = open_views(data.test, test_idx, {"eval": views["eval"]}, dataset=data.name, split="test",
                           root=root, workers=workers)["eval"]
    eval_tf = None if uint8 else to_float(cfg.normalization, mean_std)
    if cfg.augment_on == "device":
        train = Feed(train_views["train"], None, DeviceStage(stats, AugmentSpec(size, tuple(data.crop_scale),
                                                                                data.flip)))
    else:   # the loader's PIL crop, taken from the cached view
        train = Feed(train_views["train"], v2.Compose([v2.ToPILImage(), train_tf]), stage)
    feeds = {"train": train, "eval": Feed(train_views["eval"], eval_tf, stage), "test": Feed(test_view, eval_tf, stage)}
    resident = place_resident(feeds, device, float(cfg.cache_gpu_fraction))
    return feeds, {"uint8_transfer": uint8, "cache": {name: str(feed.source.path) for name, feed in feeds.items()},
                   "cache_resident": resident}


def place_resident(feeds: dict[str, Feed], device: torch.device, fraction: float) -> list[str]:
    """On CUDA, copy each cached view the loader does not transform into GPU memory (train view first) while
    it fits in `fraction` of the free memory; returns the feeds placed."""
    placed = []
    if device.type != "cuda" or fraction <= 0:
        return placed
    for name, feed in feeds.items():
        source = feed.source
        untransformed = feed.transform is None and isinstance(source, CachedSource) and source.resident is None
        if untransformed and source.nbytes <= fraction * free_gpu_bytes(device):
            source.to_device(device)
            placed.append(name)
    return placed


def free_gpu_bytes(device: torch.device) -> int:
    """Free GPU memory as this process may use it: the device's free bytes, within a fractional trial's cap
    (torch.cuda.set_per_process_memory_fraction) less what this process holds."""
    free, total = torch.cuda.mem_get_info(device)
    cap = torch.cuda.get_per_process_memory_fraction(device) * total - torch.cuda.memory_reserved(device)
    return int(max(0, min(free, cap)))
