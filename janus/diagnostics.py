"""Per-layer diagnostics of a task's LoRA update, computed from stored second moments (no samples kept).

Interference (docs/method.md §4, the paper's null-space-violation plot): for an adapted matrix with task
update ΔW (d_out × d_in) and the past tasks' inputs X_past (d_in × N),

    ‖ΔW X_past‖_F / ‖X_past‖_F = sqrt( tr(ΔW C ΔWᵀ) / tr(C) ),   C = X_past X_pastᵀ (any positive scale)

so the uncentred second moment C that OE keeps per block is enough, and no data pass. For a LoRA update
ΔW = s (B1 A1 − B0 A0) = U V with U = s [B1, −B0] (d_out × 2r) and V = [A1; A0] (2r × d_in),

    tr(ΔW C ΔWᵀ) = Σ (UᵀU) ⊙ (V C Vᵀ)

costs O(r d²) and never forms the d_out × d_in matrix ΔW (`lowrank_interference_ratio`).
"""

from __future__ import annotations

import math

import torch


def interference_ratio(delta_weight: torch.Tensor, second_moment: torch.Tensor) -> float:
    """sqrt(tr(ΔW C ΔWᵀ) / tr(C)) = ‖ΔW X‖_F / ‖X‖_F for X Xᵀ ∝ C (see the module docstring)."""
    dw, c = delta_weight.double(), second_moment.double()
    trace = torch.trace(c)
    if trace <= 0:
        return math.nan
    energy = torch.einsum("ij,jk,ik->", dw, c, dw)
    return float(torch.sqrt(energy.clamp_min(0) / trace))


def low_rank_delta(a0: torch.Tensor, b0: torch.Tensor, a1: torch.Tensor, b1: torch.Tensor,
                   scale: float) -> torch.Tensor:
    """ΔW = s (B1 A1 − B0 A0): the change of one LoRA pair's weight over a task."""
    return scale * (b1 @ a1 - b0 @ a0)


def lowrank_interference_ratio(a0: torch.Tensor, b0: torch.Tensor, a1: torch.Tensor, b1: torch.Tensor,
                               scale: float, second_moment: torch.Tensor) -> float:
    """`interference_ratio(low_rank_delta(a0, b0, a1, b1, scale), C)` without forming ΔW (module docstring)."""
    c = second_moment.double()
    trace = torch.trace(c)
    if trace <= 0:
        return math.nan
    u = scale * torch.cat([b1, -b0], dim=1).double()       # d_out × 2r
    v = torch.cat([a1, a0], dim=0).double()                 # 2r × d_in
    energy = ((u.mT @ u) * (v @ c @ v.mT)).sum()
    return float(torch.sqrt(energy.clamp_min(0) / trace))
