"""Per-layer diagnostics of a task's LoRA update, computed from stored second moments (no samples kept).

Interference (docs/method.md §4, the paper's null-space-violation plot): for an adapted matrix with task
update ΔW (d_out × d_in) and the past tasks' inputs X_past (d_in × N),

    ‖ΔW X_past‖_F / ‖X_past‖_F = sqrt( tr(ΔW C ΔWᵀ) / tr(C) ),   C = X_past X_pastᵀ (any positive scale)

so the uncentred second moment C that OE keeps per block is enough: O(d² r) per matrix, no data pass.
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
