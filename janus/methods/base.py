"""The `Method` base class: the science of one continual-learning method, never the loop.

The protocol (janus/protocol.py) owns the data, the optimizer and its schedule, and calls, per task:

    before_task(task) -> [before_epoch(task, e) -> (forward -> loss -> backward -> after_backward(task)
    -> optimizer.step() -> after_step(task))*]* -> after_task(task) -> predict(x) for evaluation

Methods never call `backward` or `step` (docs/architecture.md §3). Hooks take explicit arguments (`TaskInfo`), and the
framework does the bookkeeping (heads, optimizer rebuild, checkpoints).

State that changes shape across tasks (bases, prototype banks) belongs in `extra_state` so checkpoints
restore it; heads and per-task LoRA pairs are regrown by `load_checkpoint` from the counts and ranks the
checkpoint stores (`checkpoint_shapes`), not from its key names.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from janus.config import LoraConfig
from janus.errors import UserError
from janus.heads import TaskHeads


@dataclass(frozen=True)
class NoOptions:
    """A method without hyperparameters of its own."""


@dataclass(frozen=True)
class MethodContext:
    """What a method may know about the experiment when it is built."""

    lora: LoraConfig
    num_tasks: int
    classes_per_task: tuple[int, ...]
    feature_dim: int
    device: torch.device = torch.device("cpu")


@dataclass(frozen=True)
class TaskInfo:
    """The task being trained, as the method's hooks see it."""

    index: int                   # 0-based
    num_tasks: int
    offset: int                  # first scenario label of this task
    num_classes: int
    train_data: Dataset          # train transform
    train_eval_data: Dataset     # same images, test transform (post-task passes)
    make_loader: Callable[..., DataLoader] = field(repr=False)  # make_loader(dataset, shuffle=False)
    device: torch.device = torch.device("cpu")
    epochs: int = 1

    @property
    def classes(self) -> range:
        return range(self.offset, self.offset + self.num_classes)


@dataclass
class MethodOutput:
    logits: torch.Tensor         # over all seen classes (concatenated heads)
    features: torch.Tensor       # CLS token after the final norm
    extra: dict[str, Any] = field(default_factory=dict)


def snapshot(state):
    """A deep copy of nested dicts/lists of tensors, on the CPU (checkpoints must not alias live state)."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        # keys as plain str: a janus.lora.Site key must not reach torch.load(weights_only=True) as a class
        return {str(key) if isinstance(key, str) else key: snapshot(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(snapshot(value) for value in state)
    return copy.deepcopy(state)


class Method(nn.Module):
    """Per-task linear heads on a frozen backbone; subclasses choose what else is trained."""

    name = "base"
    Options: type = NoOptions
    trains_backbone = False      # True: checkpoints keep the backbone's weights too

    def __init__(self, backbone: nn.Module, options: Any, context: MethodContext):
        super().__init__()
        self.backbone = backbone
        self.options = options
        self.context = context
        self.heads = TaskHeads(context.feature_dim)
        self._frozen_keys = {f"backbone.{k}" for k in backbone.state_dict()}

    # --- hooks -----------------------------------------------------------------------------------------
    def before_task(self, task: TaskInfo) -> None:
        self.heads.add_head(task.num_classes, task.device)

    def before_epoch(self, task: TaskInfo, epoch: int) -> None:
        """Called before each training epoch (e.g. to open a last-epoch statistics window)."""

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Body parameters trained on the current task (the head is added by `param_groups`)."""
        return []

    def param_groups(self) -> list[dict]:
        """Optimizer groups; the protocol sets each group's lr (`head` gets optim.head_lr)."""
        groups = [{"name": "body", "params": [p for p in self.trainable_parameters() if p.requires_grad]},
                  {"name": "head", "params": list(self.heads.current.parameters())}]
        return [g for g in groups if g["params"]]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> MethodOutput:
        features = self.features(x)
        return MethodOutput(logits=self.heads(features), features=features)

    def loss(self, out: MethodOutput, y: torch.Tensor, task: TaskInfo) -> torch.Tensor:
        """Cross-entropy over the current head's classes only (targets shifted by the task offset)."""
        logits = out.logits[:, task.offset:task.offset + task.num_classes]
        return F.cross_entropy(logits.float(), y - task.offset)

    def after_backward(self, task: TaskInfo) -> None:
        """Gradients are ready; the optimizer has not stepped yet."""

    def after_step(self, task: TaskInfo) -> None:
        """The optimizer has applied its update."""

    def after_task(self, task: TaskInfo) -> dict:
        """Task training is over; return diagnostics (JSON-friendly) for logging."""
        return {}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Scores over all seen classes; the protocol takes the argmax."""
        return self.forward(x).logits

    def merged_for_eval(self) -> contextlib.AbstractContextManager:
        """A context in which evaluation may run faster with adapters folded into the weights (LoRA methods);
        nothing to fold here."""
        return contextlib.nullcontext()

    # --- checkpoints -----------------------------------------------------------------------------------
    def extra_state(self) -> dict:
        """Variable-shape state that is not a parameter or buffer (bases, prototypes)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Restore what `extra_state` returned."""

    def checkpoint_state(self) -> dict:
        """Everything needed to continue after a task boundary (frozen backbone weights excluded)."""
        model = {k: snapshot(v) for k, v in self.state_dict().items()
                 if self.trains_backbone or k not in self._frozen_keys}
        return {"model": model, "extra": snapshot(self.extra_state()), "structure": self.checkpoint_shapes()}

    def load_checkpoint(self, state: dict) -> None:
        if "structure" not in state:
            raise UserError("this task checkpoint was written before checkpoints recorded their structure; "
                            "rerun the trial from its start (--resume --retry-failed, or a new study)")
        self.regrow(state["structure"])
        missing, unexpected = self.load_state_dict(state["model"], strict=False)
        missing = [k for k in missing if self.trains_backbone or k not in self._frozen_keys]
        if missing or unexpected:
            raise RuntimeError(f"checkpoint does not match method {self.name}: missing {missing[:5]}, "
                               f"unexpected {unexpected[:5]}")
        self.load_extra_state(state["extra"])

    def checkpoint_shapes(self) -> dict:
        """The shapes a checkpoint must regrow before loading: the size of every task head so far (methods
        with per-task pairs or slices add their counts)."""
        return {"heads": [head.out_features for head in self.heads.heads]}

    def regrow(self, structure: dict) -> None:
        """Add the heads (and per-task pairs) that `structure` records, before a checkpoint is loaded."""
        self.heads.grow_to(list(structure["heads"]), self.context.device)
