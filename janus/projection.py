"""The GR plug-in: constrained LoRA updates. Any method rewrites the optimizer's update of each LoRA pair
with an `UpdateRewriter` (projector modes, the GR closed form, a violation meter); the subspaces it projects
against come from `janus.subspace` (`BlockBases`, `input_covariances`). Used by janus, lora-gpm, lora-drs.

The protocol owns the optimizer (docs/architecture.md §3), so a method constrains LoRA through its two step hooks
(docs/method.md §5.7, the hook point GR uses):

    after_backward  ("update" hook) snapshot (A₀, B₀) of every trainable pair
                    ("grad" hook)   rewrite the gradients (g_A, g_B) ← rule(g_A, g_B) in place
    after_step      ("update" hook) (ΔA, ΔB) = (A − A₀, B − B₀) → rule → (A, B) ← (A₀ + ΔA*, B₀ + ΔB*)

so with "update" what is projected is the step Adam actually took: Adam's per-coordinate scaling does not
commute with a projection, projecting gradients ("grad") is kept for comparison. Adam's moments still see
the raw gradients, as in LoRA-DRS's projected Adam (`LoRA-Sub-DRS:optimgrad/adam_proj.py`).

A `Projector` is janus.rectify's right projector Π on a slice's input space: (basis, "remove") is
Π = I − VVᵀ, (basis, "retain") is Π = UUᵀ; `scale` multiplies the rewritten step (LoRA-DRS's 1/‖PPᵀ‖_F).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from janus.errors import check_choice
from janus.lora import AdaptedSlice
from janus.rectify import VARIANTS, project_right, rectify, violation

RULES = ("project_a", "project_both", "rectify")
HOOKS = ("update", "grad")


@dataclass(frozen=True)
class GRSettings:
    """The `gr` sub-config, the same names wherever GR is used (`method.gr.*` of janus, lora-gpm, lora-drs).

    enabled  rectify the composite step (GR, janus.rectify.rectify) instead of the method's own projection
    variant  tangent (GR-T) | tangent_gauge | strict (GR-S) | off
    ridge    δ of the ridge ε = δ·tr(BᵀB)/r + 1e-8 (docs/method.md §5.4)
    balance  β·tr(AAᵀ)/r added to ε_B: bounds ΔA* while B is small ([OUR CHOICE] of the janus method, whose
             default 1e-2 the plug-ins share so that "+GR" means the same GR; 0 is the paper's ridge)
    hook     where the constraint (GR or projection) applies: "update" rewrites the optimizer's actual step
             (Adam's scaling does not commute with a projection, §5.7), "grad" the gradients before the step
    """

    enabled: bool = True
    variant: str = "tangent"
    ridge: float = 1e-3
    balance: float = 1e-2
    hook: str = "update"

    def __post_init__(self):
        check_choice("gr.variant", self.variant, VARIANTS)
        check_choice("gr.hook", self.hook, HOOKS)


GR_OFF = GRSettings(enabled=False)


@dataclass(frozen=True)
class Projector:
    basis: Tensor
    mode: str = "remove"
    scale: float = 1.0


def project_left(M: Tensor, projector: Projector) -> Tensor:
    """Π M for a column-space matrix M (d × n), Π symmetric: (Mᵀ Π)ᵀ."""
    return project_right(M.mT, projector.basis, projector.mode).mT


def rewrite_update(rule: str, A: Tensor, B: Tensor, dA: Tensor, dB: Tensor, projector: Projector,
                   gr: GRSettings = GRSettings()) -> tuple[Tensor, Tensor]:
    """The constrained step (ΔA*, ΔB*) of one pair (A r×d, B m×r) at the point (A, B).

    project_a:     ΔA* = ΔA Π,  ΔB* = ΔB                   (LoRA-GPM, docs/baselines.md §7: B free)
    project_both:  ΔA* = ΔA Π,  ΔB* = Π ΔB                  (LoRA-DRS: u T for A, T u for B, §11; needs m = d)
    rectify:       (ΔA*, ΔB*) = GR(A, B, ΔA, ΔB; Π)         (docs/method.md §5, with the `gr` settings)
    Every rule is linear in (ΔA, ΔB), so it applies to gradients as well; both outputs are times `scale`.
    """
    basis, mode = projector.basis, projector.mode
    if rule == "project_a":
        dA = project_right(dA, basis, mode)
    elif rule == "project_both":
        if dB.shape[-2] != dA.shape[-1]:
            raise ValueError(f"project_both needs d_out == d_in, got {dB.shape[-2]} and {dA.shape[-1]}")
        dA, dB = project_right(dA, basis, mode), project_left(dB, projector)
    elif rule == "rectify":
        dA, dB = rectify(gr.variant, A, B, dA, dB, basis, mode=mode, ridge=gr.ridge, balance=gr.balance)
    else:
        raise ValueError(f"unknown update rule {rule!r}; valid: {', '.join(RULES)}")
    if projector.scale == 1.0:
        return dA, dB
    return dA * projector.scale, dB * projector.scale


class ViolationMeter:
    """Mean relative first-order violation ‖Z(I − Π)‖_F / ‖Z‖_F, Z = B ΔA + ΔB A (janus.rectify.violation),
    of the step before the rewrite ("raw") and of the step applied, over all constrained slices and steps."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.raw: Tensor | float = 0.0
        self.applied: Tensor | float = 0.0
        self.count = 0

    @torch.no_grad()
    def add(self, A, B, raw: tuple[Tensor, Tensor], applied: tuple[Tensor, Tensor], projector: Projector):
        # summed as tensors: no host sync per step
        raw_v = violation(A, B, *raw, projector.basis, projector.mode).float()
        self.raw = self.raw + raw_v.sum()
        self.applied = self.applied + violation(A, B, *applied, projector.basis, projector.mode).float().sum()
        self.count += raw_v.numel()

    def summary(self) -> dict[str, float]:
        """{'violation_raw', 'violation_applied'} (NaN when nothing was constrained), then reset."""
        if not self.count:
            result = {"violation_raw": float("nan"), "violation_applied": float("nan")}
        else:
            result = {"violation_raw": float(self.raw) / self.count,
                      "violation_applied": float(self.applied) / self.count}
        self.reset()
        return result


class _Group:
    """The constrained slices of one projector mode, with their basis stacked and zero-padded once."""

    def __init__(self, slices: list[AdaptedSlice], projectors: Mapping[str, Projector], mode: str):
        self.slices = slices
        bases = [projectors[s.name].basis for s in slices]
        width = max(b.shape[1] for b in bases)
        self.projector = Projector(torch.stack([nn.functional.pad(b, (0, width - b.shape[1])) for b in bases]),
                                   mode)
        scales = [projectors[s.name].scale for s in slices]
        # one multiply for the group, none when every scale is 1 (Janus, LoRA-GPM)
        self.scale = None if all(c == 1.0 for c in scales) else torch.tensor(
            scales, dtype=bases[0].dtype, device=bases[0].device).view(-1, 1, 1)

    def params(self) -> tuple[list[Tensor], list[Tensor]]:
        return [s.pair.A for s in self.slices], [s.pair.B for s in self.slices]

    def stacked(self) -> tuple[Tensor, Tensor]:
        A, B = self.params()
        return torch.stack(A).detach(), torch.stack(B).detach()

    def scaled(self, dA: Tensor, dB: Tensor) -> tuple[Tensor, Tensor]:
        return (dA, dB) if self.scale is None else (dA * self.scale, dB * self.scale)


def _copy_rows(targets: list[Tensor], rows: Tensor) -> None:
    """targets[i] ← rows[i] in one foreach call (one launch group on CUDA instead of one copy per slice)."""
    torch._foreach_copy_(targets, list(rows.unbind(0)))


class UpdateRewriter:
    """Applies `rewrite_update` to the trainable pair of every slice that has a projector (see module doc).

    Call ``before_step`` from ``after_backward`` and ``after_step`` from ``after_step``; slices missing from
    the projector map (e.g. on the first task) train unconstrained. The slices are grouped by projector mode
    once per projector map (a task): each group's bases are stacked and zero-padded to a common width then
    (zero columns leave Π unchanged), so a step is a few large batched ops per group: one stack of the
    pairs before and after the optimizer step, the batched rule, one foreach copy back. With
    ``track_violation`` the meter records the raw step (the optimizer's step, or the gradient with the
    "grad" hook) against the applied one, on the same stacked tensors.
    """

    def __init__(self, rule: str, gr: GRSettings = GRSettings(), track_violation: bool = True):
        if rule not in RULES:
            raise ValueError(f"unknown update rule {rule!r}; valid: {', '.join(RULES)}")
        self.rule, self.hook, self.gr = rule, gr.hook, gr
        self.meter = ViolationMeter() if track_violation else None
        self._plan: tuple[Mapping, tuple[str, ...], list[_Group]] | None = None
        self._before: list[tuple[Tensor, Tensor]] = []
        self._raw: list[tuple[Tensor, Tensor]] | None = None

    def _groups(self, slices: list[AdaptedSlice], projectors: Mapping[str, Projector]) -> list[_Group]:
        constrained = _constrained(slices, projectors)
        names = tuple(s.name for s in constrained)
        if self._plan is None or self._plan[0] is not projectors or self._plan[1] != names:
            by_mode: dict[str, list[AdaptedSlice]] = {}
            for s in constrained:
                by_mode.setdefault(projectors[s.name].mode, []).append(s)
            self._plan = (projectors, names, [_Group(group, projectors, mode) for mode, group in by_mode.items()])
        return self._plan[2]

    @torch.no_grad()
    def before_step(self, slices: list[AdaptedSlice], projectors: Mapping[str, Projector]) -> None:
        groups = self._groups(slices, projectors)
        self._before = [g.stacked() for g in groups]
        self._raw = None
        grads = [g.params() for g in groups]
        if self.hook != "grad" or not groups or any(p.grad is None for A, B in grads for p in (*A, *B)):
            return
        self._raw = [(torch.stack([p.grad for p in A]), torch.stack([p.grad for p in B])) for A, B in grads]
        for group, (A0, B0), (gA, gB), (A, B) in zip(groups, self._before, self._raw, grads):
            new_A, new_B = group.scaled(*rewrite_update(self.rule, A0, B0, gA, gB, group.projector, self.gr))
            _copy_rows([p.grad for p in A], new_A)
            _copy_rows([p.grad for p in B], new_B)

    @torch.no_grad()
    def after_step(self, slices: list[AdaptedSlice], projectors: Mapping[str, Projector]) -> None:
        groups = self._groups(slices, projectors)
        for index, (group, (A0, B0)) in enumerate(zip(groups, self._before)):
            A, B = group.stacked()
            steps = (A - A0, B - B0)
            if self.hook == "update":
                applied = group.scaled(*rewrite_update(self.rule, A0, B0, *steps, group.projector, self.gr))
                params_A, params_B = group.params()
                _copy_rows(params_A, A0 + applied[0])
                _copy_rows(params_B, B0 + applied[1])
                raw = steps
            else:
                applied, raw = steps, self._raw[index] if self._raw else steps
            if self.meter is not None:
                self.meter.add(A0, B0, raw, applied, group.projector)
        self._before, self._raw = [], None

    def summary(self) -> dict[str, float]:
        return self.meter.summary() if self.meter is not None else {}


def _constrained(slices: list[AdaptedSlice], projectors: Mapping[str, Projector]) -> list[AdaptedSlice]:
    return [s for s in slices if s.name in projectors and (s.pair.A.requires_grad or s.pair.B.requires_grad)]
