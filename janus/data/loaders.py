"""DataLoader construction with a reproducible sample order."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset


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
