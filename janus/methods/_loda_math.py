"""LoDA's energy objectives and recalibration (docs/baselines.md §13): pure tensor functions.

LoDA's paper (arXiv 2603.00191) had no public code when this was written; the objectives follow the paper's
reading of the abstract and a third-party note [PAPER], and the exact forms below are [UNVERIFIED].
S_new = E[x xᵀ] of the current task, S_old the cumulative moment of the old tasks (d × d, uncentred).
All work runs in float64; results come back in the dtype of S_new.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _symmetric64(S: Tensor) -> Tensor:
    S = S.to(torch.float64)
    return (S + S.mT) / 2


def general_subspace(S_old: Tensor, S_new: Tensor, rank: int) -> Tensor:
    """U_G (d × r) = argmax_{UᵀU = I} tr(Uᵀ (S_old + S_new) U): the top-r eigenvectors of S_old + S_new."""
    _, vectors = torch.linalg.eigh(_symmetric64(S_old) + _symmetric64(S_new))
    return vectors[:, -rank:].flip(-1).to(S_new.dtype)


def isolated_subspace(S_old: Tensor, S_new: Tensor, rank: int, ridge: float) -> tuple[Tensor, Tensor]:
    """U_I (d × r) and the top-r generalized eigenvalues μ of S_new v = μ (S_old + δI) v.

    The top generalized eigenvectors maximise the Rayleigh quotient vᵀ S_new v / vᵀ (S_old + δI) v (the first
    one exactly; the top r maximise the ratio-trace tr((Vᵀ S̃_old V)⁻¹ Vᵀ S_new V)).  With S_old + δI = L Lᵀ
    (Cholesky), they are V = L⁻ᵀ W_r for W_r the top-r eigenvectors of L⁻¹ S_new L⁻ᵀ.  U_I is an orthonormal
    basis of span(V) (QR), since only the span matters for a down-projection whose B is trained [OUR CHOICE].
    The ridge is relative: δ = ridge · tr(S_old + S_new)/d, so the problem is defined at the first task too
    (S_old = 0, where U_I equals the top eigenvectors of S_new).
    """
    old, new = _symmetric64(S_old), _symmetric64(S_new)
    d = old.shape[0]
    delta = ridge * torch.trace(old + new) / d
    L = torch.linalg.cholesky(old + delta * torch.eye(d, dtype=old.dtype, device=old.device))
    whitened = torch.linalg.solve_triangular(L, torch.linalg.solve_triangular(L, new, upper=False).mT, upper=False)
    values, vectors = torch.linalg.eigh((whitened + whitened.mT) / 2)
    top = torch.linalg.solve_triangular(L.mT, vectors[:, -rank:].flip(-1), upper=True)
    return torch.linalg.qr(top)[0].to(S_new.dtype), values[-rank:].flip(-1).to(S_new.dtype)


def energy_ratio(U: Tensor, S_num: Tensor, S_den: Tensor) -> float:
    """tr(Uᵀ S_num U) / tr(Uᵀ S_den U), the projection-energy ratio LoDA's isolated subspace maximises."""
    U64 = U.to(torch.float64)
    num = torch.trace(U64.mT @ _symmetric64(S_num) @ U64)
    return float(num / torch.trace(U64.mT @ _symmetric64(S_den) @ U64))


def recalibration(A: Tensor, S_new: Tensor, S_old: Tensor, old_weight: float) -> Tensor:
    """Λ (r × r) = P_new (P_new + β P_old)⁺ with P = A S Aᵀ, the closed-form general-branch correction.

    It minimises, for any up-projection B, the feature-level drift objective
        E_new ‖B (Λ − I) A x‖² + β · E_old ‖B Λ A x‖²,
    i.e. keep the general update's effect on the new task while removing it from old-task features; β weights
    the old tasks (LoDA: "closed-form recalibration ... approximating a feature-level joint optimum") [UNVERIFIED].
    The gradient condition BᵀB[(Λ − I) P_new + β Λ P_old] = 0 holds for this Λ whatever B is.
    """
    A64 = A.to(torch.float64)
    p_new = A64 @ _symmetric64(S_new) @ A64.mT
    p_old = A64 @ _symmetric64(S_old) @ A64.mT
    return (p_new @ torch.linalg.pinv(p_new + old_weight * p_old, hermitian=True)).to(A.dtype)


def merge_moments(S_old: Tensor | None, n_old: int, S_new: Tensor, n_new: int) -> Tensor:
    """The second moment over all old and new tokens: (n_old S_old + n_new S_new) / (n_old + n_new)."""
    if S_old is None or n_old == 0:
        return S_new.clone()
    return (n_old * S_old.to(S_new) + n_new * S_new) / (n_old + n_new)
