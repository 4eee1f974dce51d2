"""KeepLoRA (ICLR'26) ported to ViT class-incremental learning (docs/baselines.md §10; docs/protocol.md §7.3).

The official code (`MaolinLuo/KeepLoRA`) covers CLIP (MTIL) and LLaVA only; it has no ViT class-incremental
code, so this adaptation is [OUR CHOICE].  For every adapted slice W (d_out × d_in) of timm's fused qkv (the
harness's LoRA layout, lora.targets = K, V and lora.rank, instead of the official q, k, v, o at rank 16):

* Protected input subspace M (d_in × k).  Before task 0: the GPM σ²-energy cut (docs/protocol.md §7.1) at
  ``weight_threshold`` on the singular vectors of W itself.  After each task: GPM expansion with the block's
  input features at ``feature_threshold``.  M is capped at d_in − r columns so that A always fits beside it.
* Task t: G = ∇_W L averaged over the task's batches (current head's cross-entropy, adapter contributing 0);
  G_res = (I − MMᵀ) Gᵀ = U S Vᵀ; A = U_rᵀ (fixed), B ← B0 = V_r S_r, and W ← W − s·B0 A so that the network is
  unchanged at the start.  Only B (and head t) is trained.  After the task W ← W + s·B A and B ← 0, so the task
  adds s·(B − B0) A, whose rows lie in span(A) ⟂ M.

Differences from the official code:
* [OUR CHOICE] ``weight_basis="input"`` takes W's right singular vectors (input space), where A lives.  The
  official code applies the left ones (output space) on the input side, which only works because
  d_in = d_out (docs/baselines.md §10 "ambiguity"); ``weight_basis="output"`` reproduces it.
* [OUR CHOICE] the feature statistic is the uncentred covariance of all tokens of the task (its eigenvalues are
  the σ² of the raw features up to a constant, so the GPM rule keeps the same directions), not the running
  average of per-batch Xᵀ; the SVD is exact instead of ``svd_lowrank(q=4r, niter=4)``.
* The optimiser is the protocol's (the official AdamW 1e-3, wd 0.01, OneCycle is a config choice).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from janus.errors import UserError
from janus.methods._lora_base import LoRAMethod
from janus.methods.base import MethodContext, TaskInfo
from janus.methods.registry import register_method
from janus.subspace import (
    complement_basis,
    gpm_expand_basis,
    post_task_statistics,
    representation_from_covariance,
)

WEIGHT_BASES = ("input", "output")


@dataclass(frozen=True)
class KeepLoRAOptions:
    weight_threshold: float = 0.85         # official `threshold2` for the vision encoder
    feature_threshold: float = 0.99        # official GPM threshold on task features
    weight_basis: str = "input"            # input: W's right singular vectors [OUR CHOICE]; output: official
    gradient_batches: int | None = None    # batches in the gradient estimate; None: the whole task (official)


def weight_protected_basis(weight: Tensor, threshold: float, side: str, max_dim: int) -> Tensor:
    """GPM σ²-cut (docs/protocol.md §7.1) on W's right (``side="input"``) or left (``"output"``) singular vectors."""
    representation = weight.t() if side == "input" else weight
    return gpm_expand_basis(None, representation.detach(), threshold, max_dim=max_dim)


def residual_gradient_init(grad: Tensor, protected: Tensor, rank: int) -> tuple[Tensor, Tensor]:
    """(A, B0) with A = U_rᵀ (r × d_in), B0 = V_r S_r (d_out × r), from (I − MMᵀ) gradᵀ = U S Vᵀ.

    The SVD runs in the coordinates of M's complement Q, so A's rows are exactly ⟂ M even when the residual has
    rank < r; B0 A is the best rank-r approximation of the residual gradient (transposed back to d_out × d_in).
    """
    complement = complement_basis(protected.to(grad.device, torch.float64), grad.shape[1])
    U, S, Vh = torch.linalg.svd(complement.t() @ grad.t().to(torch.float64), full_matrices=False)
    A = (complement @ U[:, :rank]).t()
    B0 = Vh[:rank].t() * S[:rank]
    return A.to(grad.dtype), B0.to(grad.dtype)


@register_method("keeplora")
class KeepLoRA(LoRAMethod):
    """KeepLoRA: B-only training on a residual-gradient A, merged after every task (module docstring)."""

    Options = KeepLoRAOptions
    merges_into_backbone = True

    def __init__(self, backbone: nn.Module, options: KeepLoRAOptions, context: MethodContext):
        if options.weight_basis not in WEIGHT_BASES:
            raise UserError(f"unknown method.weight_basis {options.weight_basis!r}; use input or output")
        super().__init__(backbone, options, context)
        self.max_protected = next(iter(self.lora_modules.values())).d_in - context.lora.rank
        for adapted in self.slices:
            adapted.pair.A.requires_grad_(False)
        self.protected = {s.name: weight_protected_basis(s.base_weight(), options.weight_threshold,
                                                         options.weight_basis, self.max_protected)
                          for s in self.slices}

    def before_task(self, task: TaskInfo) -> None:
        super().before_task(task)
        gradients = self._estimate_gradients(task)
        scale = self.context.lora.scale
        for adapted in self.slices:
            A, B0 = residual_gradient_init(gradients[adapted.name], self.protected[adapted.name],
                                           self.context.lora.rank)
            with torch.no_grad():
                adapted.pair.A.copy_(A)
                adapted.pair.B.copy_(B0)
            adapted.add_to_base(-scale * B0 @ A)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [adapted.pair.B for adapted in self.slices]

    def after_task(self, task: TaskInfo) -> dict:
        for adapted in self.slices:
            adapted.add_to_base(self.context.lora.scale * adapted.pair.weight().detach())
            with torch.no_grad():
                adapted.pair.B.zero_()
        self._grow_protected(task)
        dims = [basis.shape[1] for basis in self.protected.values()]
        return {"keeplora_protected_dim": sum(dims) / len(dims)}

    def _estimate_gradients(self, task: TaskInfo) -> dict[str, Tensor]:
        """Mean ∇_W L over the task's batches for every adapted slice (no optimizer involved)."""
        weights = {name: module.base_layer.weight for name, module in self.lora_modules.items()}
        totals = {name: torch.zeros_like(weight) for name, weight in weights.items()}
        self.eval()
        batches = 0
        try:
            for weight in weights.values():
                weight.requires_grad_(True)
            for x, y in task.make_loader(task.train_eval_data, shuffle=False):
                if self.options.gradient_batches is not None and batches >= self.options.gradient_batches:
                    break
                loss = self.loss(self(x.to(task.device)), y.to(task.device), task)
                for total, grad in zip(totals.values(), torch.autograd.grad(loss, list(weights.values()))):
                    total += grad
                batches += 1
        finally:
            for weight in weights.values():
                weight.requires_grad_(False)
        return {s.name: totals[s.site][s.rows] / max(batches, 1) for s in self.slices}

    def _grow_protected(self, task: TaskInfo) -> None:
        """GPM expansion of every slice's M with its block's input features (merged model, eval mode)."""
        self.eval()
        covariances = post_task_statistics(lambda batch: self.features(batch[0].to(task.device)),
                                           task.make_loader(task.train_eval_data, shuffle=False),
                                           self.lora_modules)
        representations = {name: representation_from_covariance(C) for name, C in covariances.items()}
        for adapted in self.slices:                      # K and V of a block share the input features
            self.protected[adapted.name] = gpm_expand_basis(self.protected[adapted.name],
                                                            representations[adapted.site],
                                                            self.options.feature_threshold, self.max_protected)

    def extra_state(self) -> dict:
        return {"protected": {name: basis.cpu() for name, basis in self.protected.items()}}

    def load_extra_state(self, state: dict) -> None:
        self.protected = dict(state["protected"])
