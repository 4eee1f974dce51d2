"""How the protocol turns features into a class prediction: the method's own heads, or NME on prototypes.

`eval.classifier` (one key, any method):

* ``heads``: the method's `predict` (per-task linear heads concatenated over the seen classes, docs/method.md §2.3;
  a method with its own classifier, e.g. LoRA-DRS with ``method.nme``, uses that).
* ``nme``: nearest class mean (iCaRL's NME, SimpleCIL/RanPAC's prototype classifier). After each task, the mean
  feature p_c of every new class c is computed from that task's training images (test transform) with the
  model as trained so far (frozen backbone plus the method's adapter); prediction is
  argmax_c ⟨f(x)/‖f(x)‖, p_c/‖p_c‖⟩ over all seen classes. Prototypes of old classes are never recomputed
  (no old samples are kept), so they measure exactly how far the features of old classes drifted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from janus.errors import UserError
from janus.margin import PrototypeBank

if TYPE_CHECKING:  # janus.methods imports this module (Janus's prototypes come from `class_means`)
    from janus.methods.base import Method, TaskInfo

CLASSIFIERS = ("heads", "nme")
DESCRIPTIONS = {"heads": "per-task linear heads", "nme": "NME on class prototypes"}


def check_classifier(name: str) -> str:
    if name not in CLASSIFIERS:
        raise UserError(f"eval.classifier={name!r} is not one of {', '.join(CLASSIFIERS)}")
    return name


@torch.no_grad()
def class_means(method: Method, task: TaskInfo, classes: list[int] | None = None) -> Tensor:
    """Mean feature of each class of `task` (or of `classes`) over its training images, test transform,
    model in eval mode; summed in fp32 (len(classes) × D)."""
    was_training = method.training
    method.eval()
    sums = torch.zeros(task.num_classes, method.context.feature_dim, device=task.device)
    counts = torch.zeros(task.num_classes, device=task.device)
    for x, y in task.make_loader(task.train_eval_data):
        local = y.to(task.device) - task.offset
        sums.index_add_(0, local, method.features(x.to(task.device)).float())
        counts += torch.bincount(local, minlength=task.num_classes)
    method.train(was_training)
    rows = torch.arange(task.num_classes, device=task.device) if classes is None else (
        torch.tensor(list(classes), device=task.device) - task.offset)
    return sums[rows] / counts[rows].clamp_min(1)[:, None]


class NMEClassifier:
    """Prototypes of every seen class and cosine scores against them (see the module docstring)."""

    def __init__(self, feature_dim: int):
        self.bank = PrototypeBank(feature_dim)

    def add_task(self, method: Method, task: TaskInfo) -> None:
        self.bank.add(list(task.classes), class_means(method, task).cpu())

    @torch.no_grad()
    def scores(self, features: Tensor, num_classes: int) -> Tensor:
        """Cosine similarity to each class prototype (N × num_classes; −inf where a class has none)."""
        f = F.normalize(features.float(), dim=1)
        scores = f.new_full((f.shape[0], num_classes), float("-inf"))
        scores[:, self.bank.classes.to(f.device)] = f @ self.bank.normalized().to(f).mT
        return scores

    def state_dict(self) -> dict[str, Tensor]:
        return self.bank.state_dict()

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.bank.load_state_dict(state)
