"""Data sets and class-incremental scenarios (docs/protocol.md §1-4).

    scenario = build_scenario(cfg.data, seed, mean_std=None)
    for task in scenario.tasks:
        loader = make_loader(task.train, batch_size=128, shuffle=True, seed=seed)

Data sets (`DATASETS`): cifar100, imagenet-r, imagenet100, domainnet (real on-disk formats under the data
root: config `root`, else env JANUS_DATA, else ./data), digits (scikit-learn's bundled digits, the embedded
default) and synthetic (generated, for tests).

The GPU data path (README "GPU data path"): `make_device_loader` wraps a loader so that batches arrive on the
device, converted there from uint8 (janus.data.device); janus.data.cache holds the decoded-image cache and
janus.data.feeds decides, per data set and device, what runs where.
"""

from janus.data.loaders import make_device_loader, make_loader
from janus.data.registry import DATASETS
from janus.data.scenario import Scenario, Task, TaskDataset, build_scenario

__all__ = ["DATASETS", "Scenario", "Task", "TaskDataset", "build_scenario", "make_device_loader", "make_loader"]
