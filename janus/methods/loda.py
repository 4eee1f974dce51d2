"""LoDA (ICML'26, arXiv 2603.00191): general and isolated LoRA subspaces (docs/baselines.md §13; docs/protocol.md §7.3).

No public code was available; the algorithm follows the paper's reading of the abstract and a third-party note
[PAPER], and every detail below is [UNVERIFIED] (the values are flags).  Per block, with S^t = E[x xᵀ] of the
qkv input on task t (computed with W^{t−1} before training) and S^{<t} the moment over all old tokens:

* U_G = top-r eigenvectors of S^{<t} + S^t (shared energy); U_I = top-r generalized eigenvectors of
  (S^t, S^{<t} + δI) (new-vs-old energy ratio), `_loda_math.general_subspace` / `isolated_subspace`.
* Each adapted slice gets two branches with fixed down-projections, ΔW = s·(B_G A_G + B_I A_I),
  A_G = w_G U_Gᵀ (w_G = ``general_weight``), A_I = U_Iᵀ; only B_G, B_I (zero init) and head t train.
* Gradient-Aligned Optimisation (GAO): each batch is split into halves; the B's are moved by
  ε = ±ρ ∇L_2/‖∇L_2‖ with ρ ~ U(0, ρ_max) (second half), the returned loss is the first half's at the moved
  point, and `after_backward` restores the B's before the optimizer step (SAM-like).  The sign is
  ``gao_direction`` (ascent = SAM, the paper's reading).
* After the task: W ← W + s·(B_G Λ A_G + B_I A_I), Λ = `_loda_math.recalibration` with β = old_weight·n_old/n_new
  (the joint least-squares optimum over all tokens when old_weight = 1); B ← 0; S^{<t+1} absorbs S^t.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from janus.errors import UserError
from janus.lora import AdaptedSlice, LoRAPair
from janus.methods._loda_math import (
    energy_ratio,
    general_subspace,
    isolated_subspace,
    merge_moments,
    recalibration,
)
from janus.methods._lora_base import LoRAMethod
from janus.methods.base import MethodContext, MethodOutput, TaskInfo
from janus.methods.registry import register_method
from janus.subspace import ActivationRecorder

GAO_DIRECTIONS = ("ascent", "descent")


@dataclass(frozen=True)
class LoDAOptions:
    general_weight: float = 1.0     # w_G; the paper's value was not available [UNVERIFIED]
    rho_max: float = 0.05           # GAO radius bound (SAM's common 0.05); 0 turns GAO off [UNVERIFIED]
    gao_direction: str = "ascent"   # ascent: along +∇L_2 (SAM-like), descent: along −∇L_2 [UNVERIFIED]
    old_weight: float = 1.0         # β = old_weight·n_old/n_new in the recalibration [UNVERIFIED]
    ridge: float = 1e-3             # relative ridge of S^{<t} in the generalized eigenproblem [OUR CHOICE]


@register_method("loda")
class LoDA(LoRAMethod):
    """LoDA: fixed general/isolated down-projections, GAO-trained up-projections, recalibrated merge."""

    Options = LoDAOptions
    merges_into_backbone = True

    def __init__(self, backbone: nn.Module, options: LoDAOptions, context: MethodContext):
        if options.gao_direction not in GAO_DIRECTIONS:
            raise UserError(f"unknown method.gao_direction {options.gao_direction!r}; use ascent or descent")
        super().__init__(backbone, options, context)
        for module in self.lora_modules.values():
            module.add_pairs()                                   # adapters[target] = [general, isolated]
        for adapted in self.slices:
            for pair in self.branches(adapted):
                pair.A.requires_grad_(False)
                pair.B.requires_grad_(True)
        self.old_moments: dict[str, Tensor] = {}
        self.old_count = 0
        self._task_moments: dict[str, Tensor] = {}
        self._task_count = 0
        self._unperturbed: list[tuple[nn.Parameter, Tensor]] = []

    @staticmethod
    def branches(adapted: AdaptedSlice) -> tuple[LoRAPair, LoRAPair]:
        general, isolated = adapted.module.adapters[adapted.target]
        return general, isolated

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [pair.B for adapted in self.slices for pair in self.branches(adapted)]

    # --- subspaces ----------------------------------------------------------------------------------------
    def before_task(self, task: TaskInfo) -> None:
        super().before_task(task)
        self._task_moments, self._task_count = self._input_moments(task)
        rank = self.context.lora.rank
        for name, S_new in self._task_moments.items():                # K and V of a block share the input
            S_old = self._old_moment(name, S_new)
            general_A = self.options.general_weight * general_subspace(S_old, S_new, rank).t()
            isolated_A = isolated_subspace(S_old, S_new, rank, self.options.ridge)[0].t()
            for general, isolated in map(self.branches, self._block_slices(name)):
                with torch.no_grad():
                    general.A.copy_(general_A)
                    isolated.A.copy_(isolated_A)
                    general.B.zero_()
                    isolated.B.zero_()

    def _old_moment(self, name: str, like: Tensor) -> Tensor:
        return self.old_moments.get(name, torch.zeros_like(like)).to(like)

    def _block_slices(self, name: str) -> list[AdaptedSlice]:
        return [adapted for adapted in self.slices if adapted.site == name]

    @torch.no_grad()
    def _input_moments(self, task: TaskInfo) -> tuple[dict[str, Tensor], int]:
        """S^t per block (uncentred second moment of the qkv input over all tokens) and the token count."""
        self.eval()
        with ActivationRecorder(self.lora_modules) as recorder:
            for x, _ in task.make_loader(task.train_eval_data, shuffle=False):
                self.features(x.to(task.device))
        count = next(iter(recorder.accumulators.values())).count
        return {name: acc.mean() for name, acc in recorder.accumulators.items()}, count

    # --- gradient-aligned optimisation ----------------------------------------------------------------------
    def forward(self, x: Tensor) -> MethodOutput:
        out = super().forward(x)
        if self.training:
            out.extra["inputs"] = x                              # GAO re-runs the first half at a moved point
        return out

    def loss(self, out: MethodOutput, y: Tensor, task: TaskInfo) -> Tensor:
        inputs = out.extra.get("inputs")
        if inputs is None or self.options.rho_max <= 0 or len(y) < 2:
            return super().loss(out, y, task)
        half = len(y) // 2
        probe = super().loss(MethodOutput(out.logits[half:], out.features[half:]), y[half:], task)
        params = self.trainable_parameters()
        self._perturb(params, torch.autograd.grad(probe, params))
        return super().loss(self(inputs[:half]), y[:half], task)

    @torch.no_grad()
    def _perturb(self, params: list[nn.Parameter], grads: tuple[Tensor, ...]) -> None:
        norm = torch.sqrt(sum(g.float().square().sum() for g in grads)).clamp_min(1e-12)
        sign = 1.0 if self.options.gao_direction == "ascent" else -1.0
        step = sign * self.options.rho_max * torch.rand(()).item() / norm
        self._unperturbed = [(p, p.detach().clone()) for p in params]
        for p, g in zip(params, grads):
            p.add_(g * step)

    @torch.no_grad()
    def after_backward(self, task: TaskInfo) -> None:
        for param, value in self._unperturbed:                   # step from θ with the gradient taken at θ + ε
            param.copy_(value)
        self._unperturbed = []

    # --- merge ------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def after_task(self, task: TaskInfo) -> dict:
        beta = self.options.old_weight * self.old_count / self._task_count
        traces, ratios = [], []
        for name, S_new in self._task_moments.items():
            S_old = self._old_moment(name, S_new)
            general, isolated = self.branches(self._block_slices(name)[0])
            calibration = recalibration(general.A, S_new, S_old, beta)
            traces.append(torch.trace(calibration).item() / calibration.shape[0])
            if self.old_count:
                ratios.append(energy_ratio(isolated.A.t(), S_new, S_old))
            for adapted in self._block_slices(name):
                self._merge(adapted, calibration)
            self.old_moments[name] = merge_moments(self.old_moments.get(name), self.old_count, S_new,
                                                   self._task_count)
        self.old_count += self._task_count
        diagnostics = {"loda_recalibration_trace": sum(traces) / len(traces)}
        if ratios:
            diagnostics["loda_isolated_energy_ratio"] = sum(ratios) / len(ratios)
        return diagnostics

    def _merge(self, adapted: AdaptedSlice, calibration: Tensor) -> None:
        """W ← W + s·(B_G Λ A_G + B_I A_I), then B_G = B_I = 0."""
        general, isolated = self.branches(adapted)
        adapted.add_to_base(self.context.lora.scale
                          * (general.B @ calibration @ general.A + isolated.B @ isolated.A))
        general.B.zero_()
        isolated.B.zero_()

    def extra_state(self) -> dict:
        return {"old_moments": {k: v.cpu() for k, v in self.old_moments.items()}, "old_count": self.old_count}

    def load_extra_state(self, state: dict) -> None:
        self.old_moments, self.old_count = dict(state["old_moments"]), int(state["old_count"])
