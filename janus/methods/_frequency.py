"""Frequency-domain weight updates for BiLoRA (docs/baselines.md §12): pure tensor functions.

A task's update of one (M × N) weight lives on a set S_t of 2-D frequencies, flat indices into M·N:

    F_t[k] = c_t[j] if k = S_t[j] else 0,        ΔW_t = α · Re(IFFT2(F_t)),

with IFFT2 in torch's default ("backward") normalisation, i.e.

    ΔW_t[m, n] = α/(M N) · Σ_j c_t[j] · cos(2π (m·k1_j/M + n·k2_j/N)),   S_t[j] = k1_j·N + k2_j.

IFFT2 is linear, so the summed update of several tasks is one IFFT2 of their scattered coefficients.
"""

from __future__ import annotations

import torch
from torch import Tensor


def disjoint_supports(num_positions: int, per_task: int, num_tasks: int, seed: int) -> list[Tensor]:
    """`num_tasks` pairwise-disjoint random index sets of size `per_task` drawn from range(num_positions).

    One seeded permutation is cut into consecutive chunks, so task t's support does not depend on how many
    tasks follow it.  Raises ValueError when the chunks do not fit.
    """
    if per_task < 1 or per_task * num_tasks > num_positions:
        raise ValueError(f"{num_tasks} disjoint supports of {per_task} frequencies do not fit in "
                         f"{num_positions} positions")
    generator = torch.Generator().manual_seed(seed)
    permutation = torch.randperm(num_positions, generator=generator)
    return [permutation[t * per_task:(t + 1) * per_task].clone() for t in range(num_tasks)]


def scatter_spectrum(coefficients: list[Tensor], supports: list[Tensor], shape: tuple[int, int]) -> Tensor:
    """The real (M × N) spectrum Σ_t F_t with c_t placed at the flat indices S_t (differentiable in c_t)."""
    flat = coefficients[0].new_zeros(shape[0] * shape[1])
    for values, indices in zip(coefficients, supports):
        flat = flat.index_add(0, indices.to(flat.device), values)
    return flat.view(shape)


def frequency_update(coefficients: list[Tensor], supports: list[Tensor], shape: tuple[int, int],
                     alpha: float) -> Tensor:
    """ΔW = α · Re(IFFT2(Σ_t F_t)) (see the module docstring), an (M × N) real tensor."""
    spectrum = scatter_spectrum(coefficients, supports, shape)
    return alpha * torch.fft.ifft2(spectrum.float()).real.to(coefficients[0].dtype)
