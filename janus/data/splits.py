"""Deterministic per-class (stratified) selection of sample indices (docs/protocol.md §1.3, §2.3; DESIGN `val_maa`).

Every class draws its own permutation from `np.random.default_rng([seed, stream, class_id])`, so the samples a
class contributes do not depend on which other classes are present, on the class order or on the run seed.
"""

from __future__ import annotations

import numpy as np

STREAM_DATASET_SPLIT = 0  # train/test split of data sets without an official one (ImageNet-R)
STREAM_SUBSET = 1  # caps and validation carve-out inside an existing split

# Fixed on purpose: the validation split must not move with the run seed, so every seed and every trial of a
# search is scored on the same held-out images (docs/protocol.md §2.3: the seed must not re-split the data).
VAL_SEED = 0


def held_count(n: int, fraction: float) -> int:
    """How many of a class's `n` samples are held out: round(fraction·n), at least one when fraction > 0,
    and always leaving one sample on the kept side."""
    if fraction <= 0 or n < 2:
        return 0
    return min(max(round(fraction * n), 1), n - 1)


def class_permutation(indices: np.ndarray, seed: int, stream: int, class_id: int) -> np.ndarray:
    """A deterministic shuffle of one class's sample indices."""
    rng = np.random.default_rng([seed, stream, class_id])
    return indices[rng.permutation(len(indices))]


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int, stream: int = STREAM_SUBSET, cap: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices per class into (kept, held): each class keeps at most `cap` samples, of which
    `held_count(n, fraction)` go to the held side. Both outputs are sorted index arrays."""
    labels = np.asarray(labels)
    kept: list[np.ndarray] = []
    held: list[np.ndarray] = []
    order = np.argsort(labels, kind="stable")
    classes, starts = np.unique(labels[order], return_index=True)
    for class_id, members in zip(classes, np.split(order, starts[1:])):
        members = class_permutation(members, seed, stream, int(class_id))[:cap]
        k = held_count(len(members), fraction)
        held.append(members[:k])
        kept.append(members[k:])
    return _sorted_concat(kept), _sorted_concat(held)


def _sorted_concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
