"""One task's training loop: optimizer and schedule from config, and the method's hooks.

The loop is `loss -> backward -> method.after_backward -> optimizer.step -> method.after_step`
(docs/architecture.md §3); methods never call backward or step.
"""

from __future__ import annotations

import math

import torch

from janus.config import OptimConfig
from janus.errors import UserError
from janus.methods.base import Method, TaskInfo
from janus.progress import EpochCallback, EpochTimer
from janus.runtime import autocast


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or inf; the trial fails with this error."""


def build_optimizer(method: Method, cfg: OptimConfig) -> torch.optim.Optimizer:
    groups = []
    for group in method.param_groups():
        lr = cfg.head_lr if group.get("name") == "head" and cfg.head_lr is not None else cfg.lr
        groups.append({**group, "lr": group.get("lr", lr)})
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise UserError(f"unknown optim.optimizer {cfg.optimizer!r}; use adam or sgd")


def schedule_factor(schedule: str, epoch: int, epochs: int) -> float:
    """Per-epoch lr multiplier.

    inflora_cosine: cos(99π·e / (200·(E−1))), the InfLoRA/CODA `CosineSchedule` (ends at ≈1.6 % of lr);
    cosine: CosineAnnealingLR(T_max=E) with eta_min 0; constant: 1.
    """
    if schedule == "constant":
        return 1.0
    if schedule == "inflora_cosine":
        return 1.0 if epochs <= 1 else math.cos(99 * math.pi * epoch / (200 * (epochs - 1)))
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    raise UserError(f"unknown optim.schedule {schedule!r}; use inflora_cosine, cosine or constant")


def train_task(method: Method, task: TaskInfo, cfg: OptimConfig, seed: int,
               on_epoch_end: EpochCallback | None = None) -> dict:
    """Train the method on one task; returns {'steps', 'loss'} (mean loss of the last epoch).
    `on_epoch_end` gets an `EpochEnd` after every epoch (progress display)."""
    timer = EpochTimer()
    method.before_task(task)
    optimizer = build_optimizer(method, cfg)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    loader = task.make_loader(task.train_data, shuffle=True, seed=seed * 1000 + task.index, drop_last=False)
    steps, last_loss = 0, math.nan
    for epoch in range(cfg.epochs):
        factor = schedule_factor(cfg.schedule, epoch, cfg.epochs)
        for group, lr in zip(optimizer.param_groups, base_lrs):
            group["lr"] = lr * factor
        timer.start_epoch()
        method.before_epoch(task, epoch)
        method.train()
        losses = [_train_step(method, optimizer, task, batch, cfg)
                  for batch in _limited(loader, cfg.max_steps_per_epoch)]
        steps += len(losses)
        last_loss = torch.stack(losses).mean().item() if losses else math.nan  # one sync per epoch
        if losses and not math.isfinite(last_loss):
            raise NonFiniteLoss(f"non-finite loss on task {task.index}, epoch {epoch}; lower optim.lr")
        if on_epoch_end is not None:
            on_epoch_end(timer.event(task.index, task.num_tasks, epoch, cfg.epochs, len(losses)))
    return {"steps": steps, "loss": last_loss}


def _limited(loader, max_steps: int | None):
    for step, batch in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            return
        yield batch


def _train_step(method: Method, optimizer, task: TaskInfo, batch, cfg: OptimConfig) -> torch.Tensor:
    x, y = (t.to(task.device, non_blocking=True) for t in batch)
    return train_step(method, optimizer, task, x, y, cfg.precision)


def train_step(method: Method, optimizer, task: TaskInfo, x: torch.Tensor, y: torch.Tensor,
               precision: str) -> torch.Tensor:
    """One optimisation step with the method's hooks; returns the detached loss (no host sync)."""
    with autocast(task.device, precision):
        out = method(x)
        loss = method.loss(out, y, task)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    method.after_backward(task)
    optimizer.step()
    method.after_step(task)
    return loss.detach().float()
