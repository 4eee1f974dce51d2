"""SD-LoRA (docs/baselines.md §9; `JonnesLin/SD-Lora-CL@8bacded:models/sdlora.py`, `backbone/lora.py`).

Magnitude / direction decoupling, as implemented: at task t each adapted projection adds

    Δ(x) = Σ_{i<t} α_i · B_i A_i x / (‖B_i‖_F ‖A_i‖_F)  +  α_t · B_t A_t x

with old directions (A_i, B_i) frozen and normalised, the current pair trained un-normalised, and one
learnable scalar α_i per task shared by every layer (init 0.8). Here an old pair is normalised in place when
it becomes old (A_i ← A_i/‖A_i‖_F, B_i ← B_i/‖B_i‖_F), so the forward is simply s·Σ_i α_i B_i A_i x.
Trained at task t: A_t, B_t, α_0..α_t and head t. Adapted slices: q and v (`targets`, the paper's layout;
this overrides `lora.targets`). Per-task pairs are added whatever `lora.structure` says. The paper's
optimiser is SGD (momentum 0.9, lr 1e-2, constant): set it with `optim.*` (see search_spaces/sd_lora.py).

Flags:
* `reset_magnitudes` (default true, the code's quirk): every α is reset to 0.8 at each task and re-learned
  on the new task. With false, α_t is carried over as α_t‖A_t‖‖B_t‖ so the function is kept [OUR CHOICE].
* `rr` (SD-LoRA-RR, commented out in the code): the rank of the new pair is r for tasks < rr_milestones[0],
  round(0.8r) before rr_milestones[1], round(0.6r) afterwards (10 / 8 / 6 at r = 10).
* `kd` (SD-LoRA-KD, [PAPER], details [UNVERIFIED]): after task t > 0, fit the new direction α_t B_t A_t by
  least squares on the old normalised directions over all slices, β = argmin ‖Σ_i β_i D_i − D_t‖_F; when the
  relative residual is ≤ `kd_tau` ([UNVERIFIED] value) fold it in (α_i += β_i) and drop the new pair. Needs
  reset_magnitudes=false, or the folded magnitudes would be reset.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from janus.errors import UserError
from janus.lora import LoRAQKV
from janus.methods._lora_base import LoRAMethod
from janus.methods.base import Method, MethodContext, TaskInfo
from janus.methods.registry import register_method

RR_FACTORS = (1.0, 0.8, 0.6)  # 10 / 8 / 6 at rank 10 (the commented-out block of the code)


@dataclass(frozen=True)
class SDLoRAOptions:
    targets: tuple[str, ...] = ("q", "v")   # SD-LoRA adapts q and v (overrides lora.targets)
    magnitude_init: float = 0.8
    reset_magnitudes: bool = True           # the code's quirk: old α re-initialised at every task
    rr: bool = False                        # SD-LoRA-RR rank reduction
    rr_milestones: tuple[int, ...] = (4, 8)
    kd: bool = False                        # SD-LoRA-KD direction absorption [UNVERIFIED]
    kd_tau: float = 0.1                     # [UNVERIFIED] relative least-squares residual to absorb


class MagnitudeLoRAQKV(LoRAQKV):
    """`LoRAQKV` whose pair i is scaled by the shared magnitude α_i: y = W0 x + b + s·Σ_i α_i B_i A_i x."""

    def __init__(self, module: LoRAQKV, magnitudes):
        super().__init__(module.base_layer, module.targets, module.rank, module.scale)
        self.adapters = module.adapters
        self.magnitude_source = magnitudes  # callable -> the method's ParameterList (not a submodule here)

    def add_pairs(self, rank: int | None = None) -> None:
        default, self.rank = self.rank, rank or self.rank
        try:
            super().add_pairs()
        finally:
            self.rank = default

    def _slice_output(self, x: Tensor, target: str) -> Tensor:
        pairs, alphas = self.adapters[target], self.magnitude_source()
        a_cat = torch.cat([alpha * p.A for alpha, p in zip(alphas, pairs, strict=True)], dim=0)
        b_cat = torch.cat([p.B for p in pairs], dim=1)
        return (x @ a_cat.t()) @ b_cat.t()

    def slice_delta_weight(self, target: str) -> Tensor:
        pairs = self.adapters[target]
        return self.scale * sum(a * p.weight() for a, p in zip(self.magnitude_source(), pairs, strict=True))


def lowrank_inner(B1: Tensor, A1: Tensor, B2: Tensor, A2: Tensor) -> Tensor:
    """⟨B1 A1, B2 A2⟩_F = Σ (B1ᵀB2) ⊙ (A1 A2ᵀ), without forming the d_out × d_in products."""
    return ((B1.mT @ B2) * (A1 @ A2.mT)).sum()


def least_squares_fold(gram: Tensor, cross: Tensor, target_sq: Tensor) -> tuple[Tensor, float]:
    """β = argmin ‖Σ_i β_i D_i − D‖ from the normal equations (G β = c, G_ij = ⟨D_i, D_j⟩, c_i = ⟨D_i, D⟩);
    returns β and the relative residual ‖Σβ_i D_i − D‖/‖D‖ = √(‖D‖² − cᵀβ)/‖D‖."""
    beta = torch.linalg.pinv(gram.double()) @ cross.double()
    residual_sq = (target_sq.double() - cross.double() @ beta).clamp_min(0)
    return beta.to(gram.dtype), float(residual_sq.sqrt() / target_sq.double().sqrt().clamp_min(1e-300))


@register_method("sd-lora")
class SDLoRA(LoRAMethod):
    Options = SDLoRAOptions
    pair_structure = "own"  # a pair per task, added in before_task at the task's (RR) rank

    def __init__(self, backbone: nn.Module, options: SDLoRAOptions, context: MethodContext):
        if options.kd and options.reset_magnitudes:
            raise UserError("method.kd=true needs method.reset_magnitudes=false (the folded magnitudes "
                            "would be reset at the next task)")
        lora = dataclasses.replace(context.lora, targets=options.targets)
        context = dataclasses.replace(context, lora=lora)
        super().__init__(backbone, options, context)
        # α_0 belongs to the pair injected at construction; one α is appended with every later pair
        self.magnitudes = nn.ParameterList([nn.Parameter(torch.tensor(options.magnitude_init))])

    def make_layer(self, qkv: nn.Linear) -> nn.Module:
        return MagnitudeLoRAQKV(super().make_layer(qkv), lambda: self.magnitudes)

    def task_rank(self, index: int) -> int:
        if not self.options.rr:
            return self.context.lora.rank
        stage = sum(index >= m for m in self.options.rr_milestones)
        return max(1, round(self.context.lora.rank * RR_FACTORS[min(stage, len(RR_FACTORS) - 1)]))

    def before_task(self, task: TaskInfo) -> None:
        super().before_task(task)  # the head; pairs are added here (pair_structure "own")
        if task.index == 0:
            return
        self._retire_current_pair()
        for module in self.lora_modules.values():
            module.add_pairs(self.task_rank(task.index))
        if self.options.reset_magnitudes:
            self._reset_magnitudes()
        self.magnitudes.append(nn.Parameter(torch.tensor(self.options.magnitude_init, device=task.device)))

    @torch.no_grad()
    def _retire_current_pair(self) -> None:
        """Normalise the latest pair's factors in place; without the reset, α absorbs the norms."""
        latest = len(self.magnitudes) - 1
        norm_product = []
        for s in self.slices:
            norm_a, norm_b = s.pair.A.norm().clamp_min(1e-12), s.pair.B.norm().clamp_min(1e-12)
            s.pair.A.div_(norm_a)
            s.pair.B.div_(norm_b)
            norm_product.append(norm_a * norm_b)
        if norm_product and not self.options.reset_magnitudes:
            # one α for all slices: the mean norm product keeps the function on average
            self.magnitudes[latest].mul_(torch.stack(norm_product).mean())

    @torch.no_grad()
    def _reset_magnitudes(self) -> None:
        for alpha in self.magnitudes:
            alpha.fill_(self.options.magnitude_init)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return super().trainable_parameters() + list(self.magnitudes)

    def after_task(self, task: TaskInfo) -> dict:
        diagnostics = {"structure": "per_task", "rank": self.slices[0].pair.A.shape[0]}
        if self.options.kd and task.index > 0:
            diagnostics.update(self._absorb_new_direction())
        diagnostics["magnitudes"] = [float(a.detach()) for a in self.magnitudes]
        return diagnostics

    @torch.no_grad()
    def _absorb_new_direction(self) -> dict:
        """SD-LoRA-KD: fold α_t B_t A_t into the old magnitudes when a least-squares fit is close enough."""
        old = len(self.magnitudes) - 1
        gram = torch.zeros(old, old, dtype=torch.float64, device=self.magnitudes[0].device)
        cross = torch.zeros(old, dtype=torch.float64, device=gram.device)
        target_sq = torch.zeros((), dtype=torch.float64, device=gram.device)
        for s in self.slices:
            pairs = s.module.adapters[s.target]
            new_B, new_A = pairs[-1].B * self.magnitudes[-1], pairs[-1].A
            for i in range(old):
                cross[i] += lowrank_inner(pairs[i].B, pairs[i].A, new_B, new_A)
                for j in range(old):
                    gram[i, j] += lowrank_inner(pairs[i].B, pairs[i].A, pairs[j].B, pairs[j].A)
            target_sq += lowrank_inner(new_B, new_A, new_B, new_A)
        beta, residual = least_squares_fold(gram, cross, target_sq)
        absorbed = residual <= self.options.kd_tau
        if absorbed:
            for alpha, b in zip(self.magnitudes, beta):
                alpha.add_(b.to(alpha.dtype))
            self._drop_latest_pair()
        return {"kd_residual": residual, "kd_absorbed": absorbed}

    def _drop_latest_pair(self) -> None:
        for module in self.lora_modules.values():
            for pairs in module.adapters.values():
                del pairs[-1]
        self.magnitudes = nn.ParameterList(list(self.magnitudes)[:-1])

    def regrow(self, structure: dict) -> None:
        Method.regrow(self, structure)               # heads; the pairs at their own (RR) ranks:
        for rank in structure["pair_ranks"][1:]:
            for module in self.lora_modules.values():
                module.add_pairs(rank)
        while len(self.magnitudes) < len(structure["pair_ranks"]):
            self.magnitudes.append(nn.Parameter(torch.tensor(0.0, device=self.context.device)))
