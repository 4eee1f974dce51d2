"""The device side of the data path: uint8 batches converted, normalised and (train view) augmented there.

* `DeviceStage` (on a TaskDataset): what the device does to that dataset's uint8 images; None = the loader
  already made the final float tensors (the CPU default).
* `DeviceLoader` wraps a loader like timm's PrefetchLoader: batches move to the device; uint8 images become
  float32 in [0, 1] (`to_dtype(scale=True)`, the transform's own op), are cropped and flipped when the stage
  says so (`DeviceAugment`), then normalised (`normalize`, again the transform's op: uint8 transfer gives the
  numbers the CPU transform gives); float images pass through, so consumers' `.to(device)` are no-ops.
* `DeviceAugment`: a batched random resized crop + horizontal flip. Boxes are drawn like torchvision's
  RandomResizedCrop.get_params (area scale, log-uniform ratio in (3/4, 4/3), 10 attempts, then the central
  fallback) from its own seeded generator, and cut and resized in one `roi_align(aligned=True)` call (bilinear
  samples averaged per output pixel, i.e. antialiased when shrinking): not the pixels of torchvision's resize.
* `ResidentLoader`: batches of a cached view held in device memory, gathered by index, in the order
  make_loader gives for the same arguments (same sampler, generator and per-epoch draws).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import BatchSampler, ConcatDataset, Dataset, RandomSampler, SequentialSampler, Subset
from torchvision.ops import roi_align
from torchvision.transforms.v2 import functional as TF

RATIO = (3 / 4, 4 / 3)
ATTEMPTS = 10


@dataclass(frozen=True)
class AugmentSpec:
    size: int
    scale: tuple[float, float] = (0.08, 1.0)
    flip: bool = True
    ratio: tuple[float, float] = RATIO


@dataclass(frozen=True)
class DeviceStage:
    """Applied on the device to a dataset's uint8 images: /255, `augment` if any, then mean/std if any."""

    mean_std: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    augment: AugmentSpec | None = None


def device_stage(dataset: Dataset) -> DeviceStage | None:
    """The stage of a TaskDataset, or of the TaskDatasets in a ConcatDataset or Subset (which must agree)."""
    stages = {getattr(part, "device_stage", None) for part in leaves(dataset)}
    if len(stages) > 1:
        raise ValueError(f"datasets with different device stages in one loader: {stages}")
    return stages.pop() if stages else None


def leaves(dataset: Dataset) -> list:
    if isinstance(dataset, ConcatDataset):
        return [leaf for part in dataset.datasets for leaf in leaves(part)]
    if isinstance(dataset, Subset):
        return leaves(dataset.dataset)
    return [dataset]


class DeviceAugment:
    """Random resized crop to `spec.size` + horizontal flip of a float batch [B, C, H, W], on its device."""

    def __init__(self, spec: AugmentSpec, seed: int = 0):
        self.spec = spec
        self.generator = torch.Generator()
        self.generator.manual_seed(int(seed))

    def params(self, n: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes [n, 4] as (top, left, h, w) in pixels (int64) and flip flags [n], on the CPU."""
        g, (s0, s1), (r0, r1) = self.generator, self.spec.scale, self.spec.ratio
        area = height * width
        target = area * torch.empty(n, ATTEMPTS, dtype=torch.float64).uniform_(s0, s1, generator=g)
        aspect = torch.exp(torch.empty(n, ATTEMPTS, dtype=torch.float64).uniform_(math.log(r0), math.log(r1),
                                                                                generator=g))
        w = torch.round(torch.sqrt(target * aspect)).long()
        h = torch.round(torch.sqrt(target / aspect)).long()
        ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        first = ok.long().argmax(dim=1, keepdim=True)     # the first attempt that fits
        found = ok.any(dim=1)
        fw, fh = fallback(height, width, self.spec.ratio)
        w = torch.where(found, w.gather(1, first).squeeze(1), fw)
        h = torch.where(found, h.gather(1, first).squeeze(1), fh)
        u = torch.rand(n, 2, dtype=torch.float64, generator=g)
        top = torch.where(found, (u[:, 0] * (height - h + 1)).floor().long(), (height - h) // 2)
        left = torch.where(found, (u[:, 1] * (width - w + 1)).floor().long(), (width - w) // 2)
        flips = torch.rand(n, generator=g) < 0.5 if self.spec.flip else torch.zeros(n, dtype=torch.bool)
        return torch.stack([top, left, h, w], dim=1), flips

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        boxes, flips = self.params(len(x), x.shape[-2], x.shape[-1])
        top, left, h, w = boxes.to(torch.float64).unbind(1)
        rois = torch.stack([torch.arange(len(x), dtype=torch.float64), left, top, left + w, top + h], dim=1)
        size = self.spec.size
        # drawn on the CPU (the same boxes on every device); non_blocking: no host sync per batch on CUDA
        rois = rois.to(dtype=x.dtype).to(x.device, non_blocking=True)
        out = roi_align(x, rois, output_size=(size, size), spatial_scale=1.0, sampling_ratio=-1, aligned=True)
        flips = flips.to(x.device, non_blocking=True).view(-1, 1, 1, 1)
        return torch.where(flips, out.flip(-1), out)


def fallback(height: int, width: int, ratio: tuple[float, float]) -> tuple[int, int]:
    """torchvision's central-crop fallback size (w, h) after ten failed attempts."""
    in_ratio = width / height
    if in_ratio < min(ratio):
        return width, round(width / min(ratio))
    if in_ratio > max(ratio):
        return round(height * max(ratio)), height
    return width, height


class DeviceLoader:
    """Batches of `loader` on `device`: uint8 images converted (and augmented, normalised) per `stage`; float
    images moved only; optionally in channels-last memory format."""

    def __init__(self, loader, device: torch.device, stage: DeviceStage | None, seed: int = 0,
                 channels_last: bool = False):
        self.loader, self.device, self.stage, self.channels_last = loader, torch.device(device), stage, channels_last
        self.augment = DeviceAugment(stage.augment, seed) if stage is not None and stage.augment else None

    @property
    def dataset(self) -> Dataset:
        return self.loader.dataset

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for x, y in self.loader:
            yield self.images(x), y.to(self.device, non_blocking=True)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if x.dtype == torch.uint8:
            x = TF.to_dtype(x, torch.float32, scale=True)
            if self.augment is not None:
                x = self.augment(x)
            if self.stage is not None and self.stage.mean_std is not None:
                x = TF.normalize(x, list(self.stage.mean_std[0]), list(self.stage.mean_std[1]))
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def resident_parts(dataset: Dataset) -> list | None:
    """The TaskDatasets of `dataset` if every one reads an untransformed cached view held in device memory."""
    parts = dataset.datasets if isinstance(dataset, ConcatDataset) else [dataset]
    ok = all(getattr(p, "transform", 0) is None and getattr(getattr(p, "source", None), "resident", None) is not None
             for p in parts)
    return list(parts) if parts and ok else None


class ResidentLoader:
    """uint8 batches gathered from cached views in device memory, in make_loader's order for the same
    (batch_size, shuffle, seed, drop_last) and worker setting (`persistent`: make_loader's workers > 0).

    make_loader's DataLoader draws one int64 from its generator whenever it starts a worker set (every pass
    without workers, the first pass with persistent ones), before its sampler's permutation; this loader makes
    the same draws, so both see the same permutations."""

    def __init__(self, dataset: Dataset, batch_size: int, shuffle: bool, seed: int = 0, drop_last: bool = False,
                 persistent: bool = False):
        parts = resident_parts(dataset)
        if parts is None:
            raise ValueError("ResidentLoader needs datasets of untransformed cached views in device memory")
        self.dataset = dataset
        stores = list({id(p.source): p.source for p in parts}.values())
        self.stores = [s.resident for s in stores]
        device = self.stores[0].device
        self.store_of = torch.from_numpy(np.concatenate(
            [np.full(len(p), next(k for k, s in enumerate(stores) if s is p.source)) for p in parts])).to(device)
        self.row = torch.from_numpy(np.concatenate([p.source.rows[p.indices] for p in parts])).to(device)
        self.targets = torch.from_numpy(np.concatenate([np.asarray(p.targets, dtype=np.int64) for p in parts]))
        self.targets = self.targets.to(device)
        self.generator = torch.Generator()
        self.generator.manual_seed(int(seed))
        items = range(len(self.row))
        sampler = RandomSampler(items, generator=self.generator) if shuffle else SequentialSampler(items)
        self.batches = BatchSampler(sampler, batch_size, drop_last)
        self.persistent, self._started = persistent, False

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        if not (self.persistent and self._started):
            torch.empty((), dtype=torch.int64).random_(generator=self.generator)   # DataLoader's base seed
        self._started = True
        for batch in self.batches:
            index = torch.as_tensor(batch, dtype=torch.int64).to(self.row.device, non_blocking=True)
            yield self.gather(index), self.targets[index]

    def gather(self, index: torch.Tensor) -> torch.Tensor:
        rows = self.row[index]
        if len(self.stores) == 1:
            return self.stores[0][rows]
        owner, out = self.store_of[index].view(-1, 1, 1, 1), None
        for k, store in enumerate(self.stores):   # every store indexed in full, then selected: no host sync
            picked = store[rows.clamp(max=len(store) - 1)]
            out = picked if out is None else torch.where(owner == k, picked, out)
        return out
