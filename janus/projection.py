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


class UpdateRewriter:
    """Applies `rewrite_update` to the trainable pair of every slice that has a projector (see module doc).

    Call ``before_step`` from ``after_backward`` and ``after_step`` from ``after_step``; slices missing from
    the projector map (e.g. on the first task) train unconstrained. All slices whose projectors share a mode
    are rewritten in one batched call (bases zero-padded to a common width: zero columns leave Π unchanged).
    With ``track_violation`` (the methods' `diagnostics` option) the meter records the raw step (the optimizer's step, or the gradient with the
    "grad" hook) against the applied one.
    """

    def __init__(self, rule: str, gr: GRSettings = GRSettings(), track_violation: bool = True):
        if rule not in RULES:
            raise ValueError(f"unknown update rule {rule!r}; valid: {', '.join(RULES)}")
        self.rule, self.hook, self.gr = rule, gr.hook, gr
        self.meter = ViolationMeter() if track_violation else None
        self._slices: list[AdaptedSlice] = []
        self._before: list[tuple[Tensor, Tensor]] = []
        self._raw: list[tuple[Tensor, Tensor]] | None = None

    @torch.no_grad()
    def before_step(self, slices: list[AdaptedSlice], projectors: Mapping[str, Projector]) -> None:
        self._slices = _constrained(slices, projectors)
        self._before = [(s.pair.A.detach().clone(), s.pair.B.detach().clone()) for s in self._slices]
        self._raw = None
        grads = [(s.pair.A.grad, s.pair.B.grad) for s in self._slices]
        if self.hook == "grad" and self._slices and all(a is not None and b is not None for a, b in grads):
            self._raw = [(a.clone(), b.clone()) for a, b in grads]
            pairs = [(s.pair.A.detach(), s.pair.B.detach()) for s in self._slices]
            for (a, b), (new_a, new_b) in zip(grads, self._rewrite_all(pairs, self._raw, projectors)):
                a.copy_(new_a)
                b.copy_(new_b)

    @torch.no_grad()
    def after_step(self, slices: list[AdaptedSlice], projectors: Mapping[str, Projector]) -> None:
        steps = [(s.pair.A - a0, s.pair.B - b0) for s, (a0, b0) in zip(self._slices, self._before)]
        if self.hook == "update" and self._slices:
            applied = self._rewrite_all(self._before, steps, projectors)
            for s, (a0, b0), (dA, dB) in zip(self._slices, self._before, applied):
                s.pair.A.copy_(a0 + dA)
                s.pair.B.copy_(b0 + dB)
            raw = steps
        else:
            applied, raw = steps, self._raw or steps
        if self.meter is not None and self._slices:
            self._measure(raw, applied, projectors)
        self._slices, self._before, self._raw = [], [], None

    def _groups(self, projectors: Mapping[str, Projector]) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for index, s in enumerate(self._slices):
            groups.setdefault(projectors[s.name].mode, []).append(index)
        return groups

    def _rewrite_all(self, pairs, steps, projectors) -> list[tuple[Tensor, Tensor]]:
        """rewrite_update for every constrained slice, one batched call per projector mode."""
        result: list = [None] * len(self._slices)
        for mode, indices in self._groups(projectors).items():
            A, B, dA, dB, projector = self._stack(indices, pairs, steps, projectors, mode)
            dA, dB = rewrite_update(self.rule, A, B, dA, dB, projector, self.gr)
            for row, index in enumerate(indices):
                scale = projectors[self._slices[index].name].scale
                result[index] = (dA[row] * scale, dB[row] * scale)
        return result

    def _measure(self, raw, applied, projectors) -> None:
        for mode, indices in self._groups(projectors).items():
            A, B, raw_A, raw_B, projector = self._stack(indices, self._before, raw, projectors, mode)
            applied_A = torch.stack([applied[i][0] for i in indices])
            applied_B = torch.stack([applied[i][1] for i in indices])
            self.meter.add(A, B, (raw_A, raw_B), (applied_A, applied_B), projector)

    def _stack(self, indices, pairs, steps, projectors, mode):
        bases = [projectors[self._slices[i].name].basis for i in indices]
        width = max(b.shape[1] for b in bases)
        basis = torch.stack([nn.functional.pad(b, (0, width - b.shape[1])) for b in bases])
        stacked = [torch.stack([source[i][k] for i in indices]) for source in (pairs, steps) for k in (0, 1)]
        return (*stacked, Projector(basis, mode))

    def summary(self) -> dict[str, float]:
        return self.meter.summary() if self.meter is not None else {}


def _constrained(slices: list[AdaptedSlice], projectors: Mapping[str, Projector]) -> list[AdaptedSlice]:
    return [s for s in slices if s.name in projectors and (s.pair.A.requires_grad or s.pair.B.requires_grad)]
