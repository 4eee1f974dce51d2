"""Train and test transforms (docs/protocol.md §3 normalisation quirk, §4 transform table; InfLoRA row by default).

* train: RandomResizedCrop(size, scale) + RandomHorizontalFlip; scale (0.08, 1) by default, (0.7, 1) for
  DomainNet when the user asks for the LoRA-DRS variant.
* test: Resize(256/224·size) + CenterCrop(size) for ImageNet-style data; Resize(size) for CIFAR.
* tensors already at `size` in memory (digits, synthetic): the same crop and flip, done on tensors.
* a data set whose labels a crop or a mirror image would change sets its own `crop_scale` and `flip=False`
  (digits: scale (0.8, 1), no flip: a mirrored 2 or a 6 cropped to its loop is another digit).
* normalisation: "none" keeps inputs in [0, 1] (every published baseline); "backbone" applies the mean/std
  the caller takes from timm's pretrained_cfg.
* `uint8=True` (data.uint8_transfer): the image styles stop at uint8 [3, size, size]; the conversion to float
  and the normalisation then run on the training device (janus.data.device), the same operations in the
  same order, so the same numbers.
* the decoded-image cache (janus.data.cache) stores `cache_views`: "eval" is exactly the uint8 image the test
  transform converts to float; "train" is Resize(S) + CenterCrop(S), S = 256/224·size, for ImageNet-style
  files and the stored array itself for CIFAR; the random resized crop is then taken from that view.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision.transforms import v2

from janus.errors import UserError

NORMALIZATIONS = ("none", "backbone")
STYLES = ("imagenet", "cifar", "tensor")

MeanStd = tuple[Sequence[float], Sequence[float]]


def build_transforms(
    style: str,
    size: int,
    normalization: str = "none",
    mean_std: MeanStd | None = None,
    crop_scale: tuple[float, float] = (0.08, 1.0),
    flip: bool = True,
    uint8: bool = False,
) -> tuple[Callable, Callable]:
    """Return (train_transform, test_transform); both yield float32 tensors [3, size, size] (uint8 ones for
    the image styles when `uint8`; the "tensor" style ignores it)."""
    check_style(style, size)
    tail = normalize_tail(normalization, mean_std)
    augment = [v2.RandomResizedCrop(size, scale=tuple(crop_scale), antialias=True)]
    if flip:
        augment.append(v2.RandomHorizontalFlip())
    if style == "tensor":
        # Grey tensors are augmented with one channel and expanded afterwards: cropping a stride-0
        # 3-channel view costs several times more than cropping the single channel.
        return (v2.Compose([*augment, ToThreeChannels(), *tail]),
                v2.Compose([v2.Resize((size, size), antialias=True), ToThreeChannels(), *tail]))
    to_tensor = [v2.ToImage()] if uint8 else [v2.ToImage(), *float_tail(normalization, mean_std)]
    return v2.Compose([*augment, *to_tensor]), v2.Compose([*eval_geometry(style, size), *to_tensor])


def check_style(style: str, size: int) -> None:
    if style not in STYLES:
        raise ValueError(f"unknown transform style {style!r}; expected one of {STYLES}")
    if size < 1:
        raise UserError(f"image_size must be positive, got {size}")


def eval_geometry(style: str, size: int) -> list:
    """The test transform's geometry: Resize(size) for CIFAR, Resize(256/224·size) + CenterCrop(size) else."""
    if style == "cifar":
        return [v2.Resize(size, antialias=True)]
    return [v2.Resize(size * 256 // 224, antialias=True), v2.CenterCrop(size)]


def cache_views(style: str, size: int) -> dict[str, Callable]:
    """What the decoded-image cache stores per image (PIL image -> uint8 [3, H, W]) of an "imagenet" or
    "cifar" style source: "eval" is the test transform's uint8 image; "train" is the view the random resized
    crop is taken from (Resize(S) + CenterCrop(S), S = 256/224·size; CIFAR: the stored 32×32 image itself)."""
    check_style(style, size)
    if style == "tensor":
        raise ValueError("tensor-style data is in memory already; the decoded-image cache does not apply")
    side = size * 256 // 224
    train = [] if style == "cifar" else [v2.Resize(side, antialias=True), v2.CenterCrop(side)]
    return {"train": v2.Compose([*train, v2.ToImage()]), "eval": v2.Compose([*eval_geometry(style, size), v2.ToImage()])}


def float_tail(normalization: str, mean_std: MeanStd | None) -> list:
    """uint8 [3, H, W] -> float32 in [0, 1], then the normalisation: every image transform's last steps."""
    return [v2.ToDtype(torch.float32, scale=True), *normalize_tail(normalization, mean_std)]


def to_float(normalization: str, mean_std: MeanStd | None) -> v2.Compose:
    """The image transforms' last steps on their own, for cached uint8 views (janus.data.feeds)."""
    return v2.Compose(float_tail(normalization, mean_std))


class ToThreeChannels:
    """Expand a [1, H, W] tensor to [3, H, W] (a view, no copy); three-channel tensors pass through."""

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return image.expand(3, -1, -1) if image.shape[-3] == 1 else image

    def __repr__(self) -> str:
        return "ToThreeChannels()"


def normalize_tail(normalization: str, mean_std: MeanStd | None) -> list:
    """The normalisation step as a list of zero or one transforms."""
    if normalization == "none":
        return []
    if normalization != "backbone":
        raise UserError(f"unknown normalization {normalization!r}; choose one of: {', '.join(NORMALIZATIONS)}")
    if mean_std is None:
        raise UserError("normalization 'backbone' needs the backbone's mean/std (timm pretrained_cfg)")
    mean, std = mean_std
    return [v2.Normalize(mean=[float(m) for m in mean], std=[float(s) for s in std])]
