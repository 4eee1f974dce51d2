"""DataLoader construction with a reproducible sample order; the device-side wrapper (janus.data.device)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from janus.data.device import DeviceLoader, ResidentLoader, device_stage, resident_parts


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader whose shuffling (and worker seeding) comes from its own torch.Generator seeded with `seed`.

    The same seed gives the same sequence of batches, epoch after epoch, independent of the global RNG;
    each pass over the loader draws its next permutation from that generator. Memory is pinned when CUDA is
    available.
    """
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=num_workers > 0,   # the epochs of a task reuse the workers (no respawn per epoch)
    )


def make_device_loader(dataset: Dataset, batch_size: int, shuffle: bool, device: torch.device, seed: int = 0,
                       num_workers: int = 0, drop_last: bool = False, channels_last: bool = False):
    """make_loader's DataLoader where the dataset's images are final floats and no device-side option is on
    (the CPU default); else a janus.data.device.DeviceLoader around it, or around a ResidentLoader (the same
    batch order) when the images are cached views in device memory."""
    stage = device_stage(dataset)
    if stage is None and not channels_last:
        return make_loader(dataset, batch_size, shuffle, seed=seed, num_workers=num_workers, drop_last=drop_last)
    if resident_parts(dataset) is not None:
        loader = ResidentLoader(dataset, batch_size, shuffle, seed=seed, drop_last=drop_last,
                                persistent=num_workers > 0)
    else:
        loader = make_loader(dataset, batch_size, shuffle, seed=seed, num_workers=num_workers, drop_last=drop_last)
    return DeviceLoader(loader, device, stage, seed=seed, channels_last=channels_last)
