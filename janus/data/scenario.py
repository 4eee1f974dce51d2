"""Task formation: class order, relabelling, equal tasks, validation carve-out (docs/protocol.md §2, §4).

With C classes, T tasks and class order π (original ids), task j owns π[j·C/T : (j+1)·C/T]; labels are renamed
to positions in π, so task j owns the contiguous scenario labels [j·C/T, (j+1)·C/T). Each task's validation
split is carved per class from that task's training data with a fixed seed (never from the test split).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from janus.data.device import DeviceStage
from janus.data.feeds import Feed, make_feeds
from janus.data.registry import get_builder
from janus.data.roots import resolve_root
from janus.data.screening import screen
from janus.data.sources import Source, SourceData
from janus.data.splits import VAL_SEED, stratified_split
from janus.data.transforms import NORMALIZATIONS, MeanStd
from janus.errors import UserError

CLASS_ORDERS = ("identity", "seeded")


class TaskDataset(Dataset):
    """Samples `indices` of a source, labels renamed by `label_map`, passed through `transform` (None: as loaded).

    Yields (float32 tensor [3, H, W], int scenario label); with a `device_stage` the images are uint8 and the
    training device finishes them (janus.data.device). `targets` holds the scenario labels in order.
    """

    def __init__(self, source: Source, indices: np.ndarray, label_map: np.ndarray, transform: Callable | None,
                 device_stage: DeviceStage | None = None):
        self.source = source
        self.indices = np.asarray(indices, dtype=np.int64)
        self.targets = label_map[source.labels[self.indices]]
        self.transform = transform
        self.device_stage = device_stage

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image = self.source.load(int(self.indices[i]))
        if self.transform is not None:
            image = self.transform(image)
        return image.as_subclass(torch.Tensor), int(self.targets[i])


@dataclass(frozen=True)
class Task:
    """One task: scenario labels offset..offset+num_classes-1 and its four datasets."""

    index: int
    classes: tuple[int, ...]
    offset: int
    num_classes: int
    train: TaskDataset
    val: TaskDataset
    test: TaskDataset
    train_eval: TaskDataset  # the train subset with the test transform (prototypes, statistics)


@dataclass(frozen=True)
class Scenario:
    """A sequence of tasks over one data set; `class_order[k]` is the original id of scenario label k."""

    name: str
    num_classes: int
    class_order: tuple[int, ...]
    class_names: tuple[str, ...]
    tasks: list[Task]
    info: dict = field(default_factory=dict)

    def seen(self, task: Task | int) -> list[Task]:
        """Tasks 0..t, whose test sets the evaluation after task t covers (docs/protocol.md §2.1)."""
        t = task.index if isinstance(task, Task) else int(task)
        return self.tasks[: t + 1]


def build_scenario(cfg, seed: int, mean_std: MeanStd | None = None, *, device: torch.device | str | None = None,
                   workers: int = 0) -> Scenario:
    """Build the scenario that `cfg` (a janus.config.DataConfig) describes; `seed` is the run seed, which only
    decides a `seeded` class order when cfg.order_seed is None. `device` (default: the CPU) decides what
    data.uint8_transfer=auto and the GPU-resident cache do; `workers` decode a cache build (janus.data.cache)."""
    check_config(cfg)
    device = torch.device("cpu" if device is None else device)
    builder = get_builder(cfg.dataset)
    root = resolve_root(cfg.root)
    data: SourceData = screen(builder(cfg, root), bool(cfg.skip_unreadable))
    num_classes = len(data.class_names)
    check_tasks(num_classes, int(cfg.tasks), data.name)
    order_seed = seed if cfg.order_seed is None else cfg.order_seed
    order = class_order(num_classes, cfg.class_order, int(order_seed))
    label_map = np.empty(num_classes, dtype=np.int64)
    label_map[order] = np.arange(num_classes)
    indices = split_indices(data, cfg)
    feeds, path_info = make_feeds(data, cfg, indices, mean_std, device, workers)
    tasks = make_tasks(label_map, int(cfg.tasks), indices, feeds)
    info = {**data.info, "root": str(root), "order_seed": int(order_seed) if cfg.class_order == "seeded" else None,
            **path_info}
    return Scenario(
        name=data.name,
        num_classes=num_classes,
        class_order=tuple(int(c) for c in order),
        class_names=tuple(data.class_names[c] for c in order),
        tasks=tasks,
        info=info,
    )


def split_indices(data: SourceData, cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) source indices: capped per class, validation carved per class from train."""
    train_idx, val_idx = stratified_split(
        data.train.labels, float(cfg.val_fraction), VAL_SEED, cap=cfg.max_train_per_class
    )
    test_idx, _ = stratified_split(data.test.labels, 0.0, VAL_SEED, cap=cfg.max_test_per_class)
    return train_idx, val_idx, test_idx


def make_tasks(label_map: np.ndarray, num_tasks: int, indices, feeds: dict[str, Feed]) -> list[Task]:
    """Cut every split into tasks by scenario label."""
    train_idx, val_idx, test_idx = indices
    train_feed, eval_feed = feeds["train"], feeds["eval"]
    per_task = len(label_map) // num_tasks
    tasks = []
    for t in range(num_tasks):
        lo, hi = t * per_task, (t + 1) * per_task
        train = subset(train_feed, train_idx, label_map, lo, hi)
        tasks.append(Task(
            index=t, classes=tuple(range(lo, hi)), offset=lo, num_classes=per_task,
            train=train, val=subset(eval_feed, val_idx, label_map, lo, hi),
            test=subset(feeds["test"], test_idx, label_map, lo, hi),
            train_eval=TaskDataset(eval_feed.source, train.indices, label_map, eval_feed.transform, eval_feed.stage),
        ))
    return tasks


def subset(feed: Feed, indices: np.ndarray, label_map: np.ndarray, lo: int, hi: int) -> TaskDataset:
    """The samples among `indices` whose scenario label lies in [lo, hi)."""
    scenario_labels = label_map[feed.source.labels[indices]]
    return TaskDataset(feed.source, indices[(scenario_labels >= lo) & (scenario_labels < hi)], label_map,
                       feed.transform, feed.stage)


def class_order(num_classes: int, mode: str, seed: int) -> np.ndarray:
    """`identity`: 0..C-1. `seeded`: the PyCIL rule `np.random.seed(s); np.random.permutation(C)`, computed on
    a private RandomState (same numbers, global RNG untouched). Seed 1993, C=100 starts [68, 56, 78, 8, 23, 84]."""
    if mode == "identity":
        return np.arange(num_classes)
    if mode == "seeded":
        return np.random.RandomState(seed).permutation(num_classes)
    raise UserError(f"unknown class_order {mode!r}; choose one of: {', '.join(CLASS_ORDERS)}")


def check_tasks(num_classes: int, num_tasks: int, name: str) -> None:
    """Tasks must split the classes evenly (docs/protocol.md §2.1)."""
    if num_tasks < 1 or num_classes % num_tasks:
        valid = [t for t in range(1, num_classes + 1) if num_classes % t == 0]
        raise UserError(f"{name} has {num_classes} classes, which {num_tasks} tasks cannot split evenly; "
                        f"valid --tasks values: {', '.join(map(str, valid))}")


def check_config(cfg) -> None:
    """Cheap checks before any data is read."""
    if cfg.class_order not in CLASS_ORDERS:
        raise UserError(f"unknown class_order {cfg.class_order!r}; choose one of: {', '.join(CLASS_ORDERS)}")
    if cfg.normalization not in NORMALIZATIONS:
        raise UserError(f"unknown normalization {cfg.normalization!r}; choose one of: {', '.join(NORMALIZATIONS)}")
    if not 0.0 <= float(cfg.val_fraction) < 1.0:
        raise UserError(f"val_fraction must be in [0, 1), got {cfg.val_fraction}")
    for name in ("max_train_per_class", "max_test_per_class"):
        value = getattr(cfg, name)
        if value is not None and int(value) < 1:
            raise UserError(f"{name} must be a positive integer or None, got {value}")
    if cfg.split_file and cfg.dataset != "imagenet-r":
        raise UserError(f"split_file applies to imagenet-r only, not {cfg.dataset}")
    if cfg.class_list and cfg.dataset != "imagenet100":
        raise UserError(f"class_list applies to imagenet100 only, not {cfg.dataset}")
