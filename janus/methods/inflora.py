"""InfLoRA (docs/baselines.md §8; `liangyanshuo/InfLoRA:methods/inflora.py`, `models/vit_inflora.py`).

Task t owns a branch (A_t, B_t) on K and V of every block: k = W_k x + Σ_{i≤t} B_i A_i x (v likewise).

1. Before training, one no-grad pass over the task's training images (old branches active, B_t = 0) gives
   the block input covariance C_t = (1/N_tok) Σ x xᵀ.
2. A_t = (top-r left singular vectors of Ĉ)ᵀ / √3 with Ĉ = (I − MMᵀ) C_t (remove mode) or MMᵀ C_t (retain
   mode, M the complement basis), so the rows of A_t lie outside the old-input subspace; A_t is frozen.
3. Only B_t (zero init) and head t are trained.
4. After training, a second pass recomputes C_t and grows the DualGPM basis with the GPM rule on λ² of the
   covariance (`criterion` "eig_sq") and ε_t = λ + (λ_end − λ)·t/T (docs/protocol.md §7.2).

The method is defined by per-task branches, so it adds a pair at every task whatever `lora.structure` says
(the diagnostics record `structure: per_task`). K and V of a block get the same A_t, as in the official code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from janus.lora import block_of
from janus.methods._lora_base import LoRAMethod
from janus.methods.base import TaskInfo
from janus.methods.registry import register_method
from janus.projection import Projector
from janus.rectify import project_right
from janus.subspace import BlockBases, energy_threshold, input_covariances

A_SCALE = 1 / math.sqrt(3)  # the official code's `U[:, :rank].T / math.sqrt(3)`


@dataclass(frozen=True)
class InfLoRAOptions:
    threshold: float = 0.95      # λ (`lamb`): 0.95 CIFAR-100 / DomainNet, 0.98 ImageNet-R
    threshold_end: float = 1.0   # λ_end (`lame`)
    criterion: str = "eig_sq"    # eig_sq: InfLoRA's rule on S² of the covariance | eig: on S (GPM's σ²)


def design_down_projection(C: Tensor, projector: Projector, rank: int) -> Tensor:
    """A = (top-r left singular vectors of Π C)ᵀ / √3 (docs/baselines.md §8 step 2), Π = I − MMᵀ or MMᵀ.

    The left singular vectors of Π C lie in range(Π), so A Π = A; the rows are projected once more, which
    only matters where Π C has rank < r and the SVD fills in arbitrary directions (those rows shrink to
    their allowed part instead of reaching into the protected subspace).
    """
    C64 = C.double()
    basis = projector.basis.double()
    restricted = project_right(C64.mT, basis, projector.mode).mT
    U = torch.linalg.svd(restricted)[0][:, :rank]
    return (project_right(U.mT, basis, projector.mode) * A_SCALE).to(C.dtype)


@register_method("inflora")
class InfLoRA(LoRAMethod):
    Options = InfLoRAOptions
    pair_structure = "per_task"

    def __init__(self, backbone, options: InfLoRAOptions, context):
        super().__init__(backbone, options, context)
        self.bases = BlockBases(options.criterion)

    def before_task(self, task: TaskInfo) -> None:
        super().before_task(task)
        self._design_new_branches(input_covariances(self.features, self, task, self.lora_modules))

    @torch.no_grad()
    def _design_new_branches(self, covariances: dict[str, Tensor]) -> None:
        """One design per block (one SVD of a d × d matrix), copied into its K and V branches."""
        rank = self.slices[0].pair.A.shape[0]
        for name, C in covariances.items():
            block = block_of(name)
            dual = self.bases.bases.get(block)
            projector = Projector(dual.basis, dual.mode) if dual else Projector(C.new_zeros(C.shape[0], 0))
            A = design_down_projection(C, projector, rank)
            for s in self.slices:
                if s.block == block:
                    s.pair.A.copy_(A)
                    s.pair.A.requires_grad_(False)

    def after_task(self, task: TaskInfo) -> dict:
        eps = energy_threshold(task.index, task.num_tasks, self.options.threshold, self.options.threshold_end)
        self.bases.update(input_covariances(self.features, self, task, self.lora_modules), eps)
        return {"threshold": eps, "structure": "per_task", **self.bases.summary()}

    def extra_state(self) -> dict:
        return {"bases": self.bases.state()}

    def load_extra_state(self, state: dict) -> None:
        self.bases.load(state["bases"], self.context.device)
