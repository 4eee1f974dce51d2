"""Gradient Rectification (GR): turn a LoRA update into one that respects a protected input subspace.

See docs/method.md §4 (interference condition) and §5 (GR-T, gauge, ridge, GR-S).

Notation for one adapted matrix W = W0 + s·B A (s cancels everywhere below):

* ``A``: (r, d) down-projection, ``B``: (m, r) up-projection; ``dA``, ``dB``: the update the optimiser would apply
  (same shapes; for Adam the bias-corrected, lr-scaled step with its sign, docs/method.md §5.7).
* Composite first-order update Z0 = B dA + dB A (m × d). It is never formed inside GR; only r × r systems are solved.
* A right projector Π on the input space is given by an orthonormal basis plus a ``mode``:
  ``"remove"`` (default): Π = I − VVᵀ, V spans the protected old-feature subspace (GPM, OE, InfLoRA remove mode);
  ``"retain"``: Π = UUᵀ, U spans the directions updates may use (LoRA-DRS, InfLoRA/DualGPM retain mode).
  The "forbidden" part of a row vector is then x(I − Π).

All functions accept leading batch dimensions (e.g. the K and V pair of one block stacked as (2, r, d) and
(2, m, r), sharing one basis) and float32 inputs; the r × r solves run in float64 and results come back in the
input dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor

MODES = ("remove", "retain")
VARIANTS = ("tangent", "tangent_gauge", "strict", "off")
RIDGE_FLOOR = 1e-8  # docs/method.md §5.4: the "+1e-8" that keeps the ridge positive when a factor is exactly zero


# ---------------------------------------------------------------------------------------------------------------
# projector helpers


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown projector mode {mode!r}; valid: {', '.join(MODES)}")


def _is_empty(basis: Tensor | None) -> bool:
    return basis is None or basis.shape[-1] == 0


def project_right(M: Tensor, basis: Tensor | None, mode: str = "remove") -> Tensor:
    """Right-apply the projector Π to a row-space matrix M (..., n, d): M Π.

    remove: M (I − VVᵀ) = M − (MV)Vᵀ;  retain: M UUᵀ = (MU)Uᵀ.  An empty basis means Π = I (remove) or Π = 0
    (retain).  "Project dA only" (LoRA-GPM, docs/baselines.md §7) is ``project_right(dA, V)``.
    See docs/method.md §4 and §5.1 (any right projector).
    """
    _check_mode(mode)
    if _is_empty(basis):
        return M.clone() if mode == "remove" else torch.zeros_like(M)
    basis = basis.to(M.dtype)
    inside = (M @ basis) @ basis.mT
    return M - inside if mode == "remove" else inside


def project_forbidden(M: Tensor, basis: Tensor | None, mode: str = "remove") -> Tensor:
    """The part of M's rows that the projector discards: M (I − Π) = M − M Π."""
    return M - project_right(M, basis, mode)


# ---------------------------------------------------------------------------------------------------------------
# diagnostics


def composite_update(A: Tensor, B: Tensor, dA: Tensor, dB: Tensor) -> Tensor:
    """First-order LoRA update of W/s: Z0 = B dA + dB A (m × d).  See docs/method.md §4.  Diagnostics only."""
    return B @ dA + dB @ A


def _lowrank_sq_norm(B: Tensor, X: Tensor, Y: Tensor, A: Tensor) -> Tensor:
    """‖B X + Y A‖_F² from r × r Gram matrices: ⟨BᵀB, XXᵀ⟩ + 2⟨BᵀY, XAᵀ⟩ + ⟨YᵀY, AAᵀ⟩ (no m × n matrix)."""
    B, X, Y, A = (t.double() for t in (B, X, Y, A))
    total = (B.mT @ B * (X @ X.mT)).sum((-2, -1))
    total = total + 2 * (B.mT @ Y * (X @ A.mT)).sum((-2, -1))
    return total + (Y.mT @ Y * (A @ A.mT)).sum((-2, -1))


def violation(
    A: Tensor, B: Tensor, dA: Tensor, dB: Tensor, basis: Tensor | None, mode: str = "remove"
) -> Tensor:
    """Relative first-order violation ‖Z0 (I − Π)‖_F / ‖Z0‖_F with Z0 = B dA + dB A; 0 where Z0 = 0.

    remove mode: ‖Z0 V‖_F / ‖Z0‖_F (the paper's ‖ΔW V‖ normalised).  See docs/method.md §4, §5.5.
    """
    _check_mode(mode)
    total = _lowrank_sq_norm(B, dA, dB, A)
    if _is_empty(basis):
        forbidden = torch.zeros_like(total) if mode == "remove" else total
    elif mode == "remove":
        forbidden = _lowrank_sq_norm(B, dA @ basis.to(dA.dtype), dB, A @ basis.to(A.dtype))
    else:
        forbidden = total - _lowrank_sq_norm(B, dA @ basis.to(dA.dtype), dB, A @ basis.to(A.dtype))
    ratio = forbidden.clamp_min(0).sqrt() / total.sqrt().clamp_min(1e-300)
    return torch.where(total > 0, ratio, torch.zeros_like(ratio)).to(A.dtype)


# ---------------------------------------------------------------------------------------------------------------
# GR-T: least squares onto the LoRA tangent space (docs/method.md §5.2, ridge §5.4)


def _ridged_gram(gram: Tensor, ridge: float, other: Tensor | None = None, balance: float = 0.0) -> Tensor:
    """G + ε I with ε = δ·tr(G)/r + β·tr(G_other)/r + 1e-8, in float64.

    δ·tr(G)/r + 1e-8 is the ridge of docs/method.md §5.4. It is relative, so (BᵀB + ε)⁻¹Bᵀ still grows like 1/‖B‖
    while B is small (early training); the [OUR CHOICE] balance term β·tr(AAᵀ)/r ties the ridge to the
    other factor's scale, which bounds ‖ΔA*‖ and the second-order term ΔB*ΔA* there (β = 0: the paper).
    """
    gram = gram.double()
    r = gram.shape[-1]
    eps = ridge * gram.diagonal(dim1=-2, dim2=-1).sum(-1) / r + RIDGE_FLOOR
    if other is not None and balance:
        eps = eps + balance * other.double().diagonal(dim1=-2, dim2=-1).sum(-1) / r
    eye = torch.eye(r, dtype=gram.dtype, device=gram.device)
    return gram + eps[..., None, None] * eye


def solve(matrix: Tensor, rhs: Tensor) -> Tensor:
    """matrix⁻¹ rhs for the ridged (never singular) r × r systems of GR: `solve_ex` skips the error check,
    which would cost a host-device sync per call on a GPU (same LU factorisation, same result)."""
    return torch.linalg.solve_ex(matrix, rhs)[0]


def rectify_tangent(
    A: Tensor,
    B: Tensor,
    dA: Tensor,
    dB: Tensor,
    basis: Tensor | None,
    ridge: float = 1e-3,
    mode: str = "remove",
    balance: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """GR-T: factors whose composite is the tangent-space least-squares fit of the safe target Z = Z0 Π.

    With Π_B = B(BᵀB)⁻¹Bᵀ, Π_A = Aᵀ(AAᵀ)⁻¹A, the minimiser of ‖B dA* + dB* A − Z‖_F is
    P_T(Z) = Π_B Z + (I − Π_B) Z Π_A, realised by the expanded forms of docs/method.md §5.2 / §5.9:

        dA* = dA Π + (BᵀB + ε_B I)⁻¹ Bᵀ dB (AΠ)
        dB* = T − B (BᵀB + ε_B I)⁻¹ Bᵀ T,   T = dB (AΠ) Aᵀ (AAᵀ + ε_A I)⁻¹

    with ε = δ·tr(gram)/r + 1e-8 (δ = ``ridge``, §5.4), plus β·tr(AAᵀ)/r in ε_B (β = ``balance``, see
    ``_ridged_gram``; 0 = the paper's ridge).  Exact at ε → 0 when B has full column rank; with B = 0
    it gives dA* = dA Π and dB* = dB AΠ A⁺, so learning proceeds.  The remaining violation (I − Π_B) Z Π_A (I − Π)
    is generally non-zero (§5.5).  An empty remove-basis is a no-op (Π = I).  See docs/method.md §5.2–§5.5.
    """
    _check_mode(mode)
    if mode == "remove" and _is_empty(basis):
        return dA.clone(), dB.clone()
    A_proj = project_right(A, basis, mode)
    dA_proj = project_right(dA, basis, mode)
    gram_A = A @ A.mT
    BtB = _ridged_gram(B.mT @ B, ridge, other=gram_A, balance=balance)
    AAt = _ridged_gram(gram_A, ridge)
    coef_A = solve(BtB, (B.mT @ dB).double()).to(A.dtype)  # (BᵀB+ε)⁻¹ Bᵀ dB, r × r
    dA_star = dA_proj + coef_A @ A_proj
    # (AΠ)Aᵀ (AAᵀ+ε)⁻¹ = [ (AAᵀ+ε)⁻¹ A (AΠ)ᵀ ]ᵀ since AAᵀ+ε is symmetric
    right = solve(AAt, (A @ A_proj.mT).double()).mT.to(A.dtype)
    T = dB @ right
    dB_star = T - B @ solve(BtB, (B.mT @ T).double()).to(B.dtype)
    return dA_star, dB_star


def _solve_sylvester_sym(S1: Tensor, S2: Tensor, rhs: Tensor) -> Tensor:
    """X with S1 X + X S2 = rhs for symmetric positive definite r × r S1, S2 (eigendecompositions, float64)."""
    a, P = torch.linalg.eigh(S1)
    b, Q = torch.linalg.eigh(S2)
    core = (P.mT @ rhs @ Q) / (a[..., :, None] + b[..., None, :])
    return P @ core @ Q.mT


def rectify_tangent_gauge(
    A: Tensor,
    B: Tensor,
    dA: Tensor,
    dB: Tensor,
    basis: Tensor | None,
    ridge: float = 1e-3,
    mode: str = "remove",
    balance: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """GR-T followed by the LoRA-Pro-style gauge choice that keeps the factors closest to the raw update.

    Any X (r × r) gives the same composite: (dA* + X A, dB* − B X).  X minimises
    ‖dA* + XA − dA‖² + ‖dB* − BX − dB‖², i.e. solves the Sylvester equation

        BᵀB X + X AAᵀ = (dA − dA*) Aᵀ + Bᵀ (dB* − dB)

    (docs/method.md §5.3 writes −Bᵀ dB, which equals this when BᵀdB* = 0, i.e. at ridge 0).  Solved with the ridged Grams
    (BᵀB + ε_B I, AAᵀ + ε_A I), which adds a small Tikhonov term on X and keeps the solve defined when B = 0.
    See docs/method.md §5.3.
    """
    dA_star, dB_star = rectify_tangent(A, B, dA, dB, basis, ridge=ridge, mode=mode, balance=balance)
    if mode == "remove" and _is_empty(basis):
        return dA_star, dB_star
    rhs = ((dA - dA_star) @ A.mT + B.mT @ (dB_star - dB)).double()
    BtB = _ridged_gram(B.mT @ B, ridge, other=A @ A.mT, balance=balance)
    X = _solve_sylvester_sym(BtB, _ridged_gram(A @ A.mT, ridge), rhs).to(A.dtype)
    return dA_star + X @ A, dB_star - B @ X


# ---------------------------------------------------------------------------------------------------------------
# GR-S: minimum change with exact first-order orthogonality (docs/method.md §5.6)


def _thin_svd_from_gram(M: Tensor, rtol: float, left: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Thin SVD of a (batched) float64 matrix with one side of size r, via the r × r Gram.

    left=True : M is (n, r); returns (U (n, r), s (r,), W (r, r)) with M = U diag(s) Wᵀ.
    left=False: M is (r, n); returns (U (r, r), s (r,), W (n, r)).
    Directions with s ≤ rtol·max(s) (or s = 0) get s = 0 and a zero column on the long side, so they drop out.
    """
    gram = M.mT @ M if left else M @ M.mT
    evals, evecs = torch.linalg.eigh(gram)
    s = evals.clamp_min(0).sqrt()
    keep = s > rtol * s.amax(-1, keepdim=True).clamp_min(1e-300)
    s = torch.where(keep, s, torch.zeros_like(s))
    inv_s = torch.where(keep, 1 / s.clamp_min(1e-300), torch.zeros_like(s))
    if left:
        return (M @ evecs) * inv_s[..., None, :], s, evecs
    return evecs, s, (M.mT @ evecs) * inv_s[..., None, :]


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    """num / den where den > 0, else 0 (those entries belong to null directions, docs/method.md §5.6)."""
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.zeros_like(num))


def rectify_strict(
    A: Tensor,
    B: Tensor,
    dA: Tensor,
    dB: Tensor,
    basis: Tensor | None,
    mode: str = "remove",
    rtol: float = 1e-6,
) -> tuple[Tensor, Tensor]:
    """GR-S: min ‖dA* − dA‖² + ‖dB* − dB‖²  s.t.  (B dA* + dB* A)(I − Π) = 0.

    With Q = I − Π (remove: VVᵀ), Lagrange multiplier Λ = ΛQ (m × d):
        dA* = dA − BᵀΛ,   dB* = dB − Λ Aᵀ,   BBᵀ Λ + Λ (QAᵀAQ) = E := Z0 Q.
    Thin SVDs B = U_b S_b W_bᵀ (β = S_b²) and AQ = U_a S_a W_aᵀ (γ = S_a²) give the low-rank closed form
        Λ = U_b[(U_bᵀEW_a) ⊘ (β_i+γ_j)]W_aᵀ + U_b[(U_bᵀE(Q − W_aW_aᵀ)) ⊘ β_i] + [((I − U_bU_bᵀ)EW_a) ⊘ γ_j]W_aᵀ,
    of which only BᵀΛ (r × d) and ΛAᵀ (m × r) are formed; since (Q − W_aW_aᵀ)Aᵀ = 0 and Bᵀ(I − U_bU_bᵀ) = 0,
        BᵀΛ = W_b S_b [ (U_bᵀEW_a ⊘ (β+γ)) W_aᵀ + (U_bᵀE − (U_bᵀEW_a)W_aᵀ) ⊘ β ],
        ΛAᵀ = U_b (U_bᵀEW_a ⊘ (β+γ)) S_a U_aᵀ + ((EW_a − U_b U_bᵀEW_a) ⊘ γ) S_a U_aᵀ.
    Singular values ≤ rtol·max count as zero (the null × null block of E vanishes, so the system is consistent).
    Caveat (§5.6): with B = 0 and AQ of full row rank, dB* = 0 (deadlock).  See docs/method.md §5.6.
    """
    _check_mode(mode)
    if mode == "remove" and _is_empty(basis):
        return dA.clone(), dB.clone()
    A64, B64, dA64, dB64 = (t.double() for t in (A, B, dA, dB))
    basis64 = None if basis is None else basis.double()
    U_b, s_b, W_b = _thin_svd_from_gram(B64, rtol, left=True)  # B = U_b S_b W_bᵀ
    A_forbidden = project_forbidden(A64, basis64, mode)  # A Q
    U_a, s_a, W_a = _thin_svd_from_gram(A_forbidden, rtol, left=False)  # AQ = U_a S_a W_aᵀ
    beta, gamma = s_b**2, s_a**2
    dA_forbidden = project_forbidden(dA64, basis64, mode)
    UtE = (U_b.mT @ B64) @ dA_forbidden + (U_b.mT @ dB64) @ A_forbidden  # U_bᵀ E, r × d
    EW = B64 @ (dA64 @ W_a) + dB64 @ (A64 @ W_a)  # E W_a = Z0 Q W_a = Z0 W_a, m × r
    UtEW = UtE @ W_a
    core = _safe_div(UtEW, beta[..., :, None] + gamma[..., None, :])
    side_b = _safe_div(UtE - UtEW @ W_a.mT, beta[..., :, None])
    side_a = _safe_div(EW - U_b @ UtEW, gamma[..., None, :])
    BtL = (W_b * s_b[..., None, :]) @ (core @ W_a.mT + side_b)
    LAt = (U_b @ core + side_a) @ (s_a[..., :, None] * U_a.mT)
    return (dA64 - BtL).to(dA.dtype), (dB64 - LAt).to(dB.dtype)


# ---------------------------------------------------------------------------------------------------------------
# dispatch


def rectify(
    variant: str,
    A: Tensor,
    B: Tensor,
    dA: Tensor,
    dB: Tensor,
    basis: Tensor | None,
    mode: str = "remove",
    ridge: float = 1e-3,
    rtol: float = 1e-6,
    balance: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Rectify one LoRA update (dA, dB) with the named GR variant (docs/method.md §9.3 switch "GR variant").

    variant: "tangent" (GR-T, the default), "tangent_gauge" (GR-T + gauge), "strict" (GR-S) or "off"
    (returns the update unchanged).  ``ridge`` and ``balance`` are used by the tangent variants,
    ``rtol`` by strict.
    See docs/method.md §5.2–§5.6.
    """
    if variant == "tangent":
        return rectify_tangent(A, B, dA, dB, basis, ridge=ridge, mode=mode, balance=balance)
    if variant == "tangent_gauge":
        return rectify_tangent_gauge(A, B, dA, dB, basis, ridge=ridge, mode=mode, balance=balance)
    if variant == "strict":
        return rectify_strict(A, B, dA, dB, basis, mode=mode, rtol=rtol)
    if variant == "off":
        _check_mode(mode)
        return dA, dB
    raise ValueError(f"unknown GR variant {variant!r}; valid: {', '.join(VARIANTS)}")
