"""Assembling one experiment from its config: backbone -> scenario -> method context -> method -> loaders.

    experiment = build_experiment(cfg)         # cfg: a resolved ExperimentConfig (janus.methods.resolve_config)
    for task in experiment.scenario.tasks:
        info = experiment.task_info(task)      # what the method's hooks see
        ...

The one place this is written: the protocol (`janus.protocol.run_experiment`), the test helpers
(`janus.testing`) and the benchmarks all build through it, so they build the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from janus.backbone import build_backbone, data_mean_std, feature_dim
from janus.config import ExperimentConfig
from janus.data import build_scenario, make_device_loader
from janus.methods import Method, MethodContext, TaskInfo, build_method
from janus.runtime import compile_backbone, configure_device, num_workers, resolve_device, seed_everything


@dataclass
class Experiment:
    cfg: ExperimentConfig        # resolved: every method option spelled out
    device: torch.device
    backbone: nn.Module          # the frozen timm ViT the method adapts (also reachable as method.backbone)
    scenario: object             # janus.data.Scenario: tasks in order, class order
    context: MethodContext
    method: Method

    @property
    def num_tasks(self) -> int:
        return len(self.scenario.tasks)

    def loader(self, dataset: Dataset, **kwargs) -> DataLoader:
        """A loader with the config's batch sizes (train batch when shuffling, eval batch otherwise)."""
        return config_loader(dataset, self.cfg, self.device, **kwargs)

    def task_info(self, task) -> TaskInfo:
        """The `TaskInfo` the method's hooks get for one task of the scenario."""
        return make_task_info(self.cfg, task, self.num_tasks, self.device)


def config_loader(dataset: Dataset, cfg: ExperimentConfig, device: torch.device, *, shuffle: bool = False,
                  seed: int = 0, drop_last: bool = False, batch_size: int | None = None) -> DataLoader:
    """The plain DataLoader on the CPU default; a janus.data.device.DeviceLoader (batches already on `device`)
    when the data path finishes images there (uint8 transfer, device augmentation) or optim.channels_last."""
    optim = cfg.optim
    size = batch_size or (optim.batch_size if shuffle else optim.eval_batch_size)
    return make_device_loader(dataset, size, shuffle, device, seed=seed, drop_last=drop_last,
                              num_workers=num_workers(optim.num_workers, device), channels_last=optim.channels_last)


def make_task_info(cfg: ExperimentConfig, task, num_tasks: int, device: torch.device) -> TaskInfo:
    return TaskInfo(index=task.index, num_tasks=num_tasks, offset=task.offset, num_classes=task.num_classes,
                    train_data=task.train, train_eval_data=task.train_eval,
                    make_loader=partial(config_loader, cfg=cfg, device=device), device=device,
                    epochs=cfg.optim.epochs)


def build_experiment(cfg: ExperimentConfig, device: torch.device | str | None = None) -> Experiment:
    """Seed, pick the device, build backbone, scenario and method (on the device) for a resolved config.

    `device` overrides `cfg.optim.device` (the test helpers pass "cpu")."""
    seed_everything(cfg.seed)
    device = resolve_device(cfg.optim.device if device is None else str(device))
    configure_device(device)
    backbone = build_backbone(cfg.backbone, img_size=cfg.data.image_size)
    scenario = build_scenario(cfg.data, cfg.seed, mean_std=data_mean_std(backbone), device=device,
                              workers=num_workers(cfg.optim.num_workers, device))
    context = MethodContext(lora=cfg.lora, num_tasks=len(scenario.tasks), device=device,
                            classes_per_task=tuple(t.num_classes for t in scenario.tasks),
                            feature_dim=feature_dim(backbone))
    method = build_method(cfg, backbone, context).to(device)
    if cfg.optim.compile:
        compile_backbone(backbone, len(scenario.tasks))
    return Experiment(cfg, device, backbone, scenario, context, method)
