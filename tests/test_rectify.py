"""Gradient rectification (janus/rectify.py) against dense references; docs/method.md §5.5."""

import pytest
import torch

from janus.rectify import (
    VARIANTS,
    composite_update,
    project_right,
    rectify,
    rectify_strict,
    rectify_tangent,
    rectify_tangent_gauge,
    violation,
)

F64 = torch.float64


def _orthonormal(d, k, gen):
    return torch.linalg.qr(torch.randn(d, k, dtype=F64, generator=gen))[0]


def _complement(V):
    return torch.linalg.qr(V, mode="complete")[0][:, V.shape[1] :]


def _problem(m=7, d=6, r=2, k=2, seed=0, zero_B=False):
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(r, d, dtype=F64, generator=gen)
    B = torch.zeros(m, r, dtype=F64) if zero_B else torch.randn(m, r, dtype=F64, generator=gen)
    dA = torch.randn(r, d, dtype=F64, generator=gen)
    dB = torch.randn(m, r, dtype=F64, generator=gen)
    return A, B, dA, dB, _orthonormal(d, k, gen)


def _change_norm(dA1, dB1, dA0, dB0):
    return ((dA1 - dA0).square().sum() + (dB1 - dB0).square().sum()).sqrt()


def test_project_right_matches_dense_projectors():
    A, _, _, _, V = _problem(d=6, k=2)
    U = _complement(V)
    eye = torch.eye(6, dtype=F64)
    assert torch.allclose(project_right(A, V), A @ (eye - V @ V.T))
    assert torch.allclose(project_right(A, U, mode="retain"), A @ (U @ U.T))
    assert torch.allclose(project_right(A, V), project_right(A, U, mode="retain"))


def test_composite_and_violation_match_dense_values():
    A, B, dA, dB, V = _problem()
    Z = B @ dA + dB @ A
    assert torch.allclose(composite_update(A, B, dA, dB), Z)
    expected = torch.linalg.norm(Z @ V) / torch.linalg.norm(Z)
    assert torch.allclose(violation(A, B, dA, dB, V), expected)
    assert torch.allclose(violation(A, B, dA, dB, _complement(V), mode="retain"), expected)


def test_tangent_composite_is_dense_least_squares_projection_of_safe_target():
    m, d, r = 7, 6, 2
    A, B, dA, dB, V = _problem(m, d, r, k=2, seed=1)
    Pi = torch.eye(d, dtype=F64) - V @ V.T
    target = (B @ dA + dB @ A) @ Pi
    # row-major vec: vec(BX) = (B ⊗ I_d) vec(X), vec(YA) = (I_m ⊗ Aᵀ) vec(Y)
    system = torch.cat(
        [torch.kron(B, torch.eye(d, dtype=F64)), torch.kron(torch.eye(m, dtype=F64), A.T.contiguous())], dim=1
    )
    solution = torch.linalg.lstsq(system, target.reshape(-1, 1), driver="gelsd").solution
    dense_fit = (system @ solution).reshape(m, d)
    dA_star, dB_star = rectify_tangent(A, B, dA, dB, V, ridge=1e-12)
    assert torch.allclose(composite_update(A, B, dA_star, dB_star), dense_fit, atol=1e-6)
    assert not torch.allclose(dense_fit, target, atol=1e-3)  # the safe target itself is not reachable


@pytest.mark.parametrize("seed", range(5))
def test_tangent_violation_below_raw_and_project_dA_only(seed):
    A, B, dA, dB, V = _problem(m=32, d=32, r=4, k=8, seed=seed)
    raw = violation(A, B, dA, dB, V)
    dA_only = violation(A, B, project_right(dA, V), dB, V)
    dA_star, dB_star = rectify_tangent(A, B, dA, dB, V)
    rectified = violation(A, B, dA_star, dB_star, V)
    assert rectified < dA_only < raw


def test_tangent_with_zero_B_still_learns():
    A, B, dA, dB, V = _problem(m=16, d=12, r=3, k=4, zero_B=True)
    dA_star, dB_star = rectify_tangent(A, B, dA, dB, V, ridge=1e-12)
    assert dB_star.norm() > 0.1 * dB.norm()
    A_proj = project_right(A, V)
    expected_dB = dB @ A_proj @ torch.linalg.pinv(A)  # dB (AΠ) A⁺
    assert torch.allclose(dB_star, expected_dB, atol=1e-5)
    assert torch.allclose(dA_star, project_right(dA, V))


@pytest.mark.parametrize("zero_column", [False, True])
def test_strict_has_no_first_order_violation(zero_column):
    A, B, dA, dB, V = _problem(m=24, d=20, r=4, k=6, seed=3)
    if zero_column:
        B[:, 1] = 0.0  # rank-deficient B: a zero singular value handled by the tolerance
    dA_star, dB_star = rectify_strict(A, B, dA, dB, V)
    assert violation(A, B, dA, dB, V) > 0.1
    assert violation(A, B, dA_star, dB_star, V) < 1e-5


def test_strict_float32_inputs_stay_float32_and_safe():
    A, B, dA, dB, V = (t.float() for t in _problem(m=48, d=40, r=4, k=10, seed=4))
    dA_star, dB_star = rectify_strict(A, B, dA, dB, V)
    assert dA_star.dtype == dB_star.dtype == torch.float32
    assert violation(A, B, dA_star, dB_star, V) < 1e-5


def test_strict_is_the_minimum_norm_change():
    m, d, r = 6, 5, 2
    A, B, dA, dB, V = _problem(m, d, r, k=2, seed=5)
    AV = A @ V
    # row-major vec: vec(B dA V) = (B ⊗ Vᵀ) vec(dA), vec(dB AV) = (I_m ⊗ (AV)ᵀ) vec(dB)
    constraint = torch.cat(
        [torch.kron(B, V.T.contiguous()), torch.kron(torch.eye(m, dtype=F64), AV.T.contiguous())], dim=1
    )
    raw = torch.cat([dA.reshape(-1), dB.reshape(-1)])
    dense = raw - torch.linalg.pinv(constraint) @ (constraint @ raw)
    dA_star, dB_star = rectify_strict(A, B, dA, dB, V)
    assert torch.allclose(torch.cat([dA_star.reshape(-1), dB_star.reshape(-1)]), dense, atol=1e-8)


def _output_change(A, B, dA, dB, X, step):
    return ((B + step * dB) @ (A + step * dA) @ X - B @ A @ X).norm()


def test_strict_changes_old_outputs_only_at_second_order():
    A, B, dA, dB, V = _problem(m=24, d=20, r=4, k=6, seed=6)
    old_inputs = V @ torch.randn(6, 9, dtype=F64, generator=torch.Generator().manual_seed(0))
    dA_star, dB_star = rectify_strict(A, B, dA, dB, V)
    step = 1e-3
    strict_ratio = _output_change(A, B, dA_star, dB_star, old_inputs, step) / _output_change(
        A, B, dA_star, dB_star, old_inputs, step / 2
    )
    raw_ratio = _output_change(A, B, dA, dB, old_inputs, step) / _output_change(
        A, B, dA, dB, old_inputs, step / 2
    )
    assert strict_ratio == pytest.approx(4.0, rel=1e-3)
    assert raw_ratio == pytest.approx(2.0, rel=1e-2)


@pytest.mark.parametrize("variant", ["tangent", "tangent_gauge", "strict"])
def test_retain_mode_equals_remove_mode_with_complement_basis(variant):
    A, B, dA, dB, V = _problem(m=16, d=12, r=3, k=5, seed=7)
    removed = rectify(variant, A, B, dA, dB, V, mode="remove")
    retained = rectify(variant, A, B, dA, dB, _complement(V), mode="retain")
    assert torch.allclose(removed[0], retained[0], atol=1e-8)
    assert torch.allclose(removed[1], retained[1], atol=1e-8)


def test_gauge_keeps_composite_and_moves_factors_less():
    A, B, dA, dB, V = _problem(m=16, d=12, r=3, k=4, seed=8)
    tangent = rectify_tangent(A, B, dA, dB, V)
    gauged = rectify_tangent_gauge(A, B, dA, dB, V)
    assert torch.allclose(composite_update(A, B, *gauged), composite_update(A, B, *tangent), atol=1e-8)
    assert _change_norm(*gauged, dA, dB) < _change_norm(*tangent, dA, dB)


@pytest.mark.parametrize("variant", ["tangent", "tangent_gauge", "strict"])
def test_batched_pairs_equal_one_by_one(variant):
    pairs = [_problem(m=10, d=8, r=2, k=3, seed=s) for s in (10, 11)]
    V = pairs[0][4]
    stacked = [torch.stack([p[i] for p in pairs]) for i in range(4)]
    batched = rectify(variant, *stacked, V)
    for index, pair in enumerate(pairs):
        single = rectify(variant, *pair[:4], V)
        assert torch.allclose(batched[0][index], single[0], atol=1e-10)
        assert torch.allclose(batched[1][index], single[1], atol=1e-10)


@pytest.mark.parametrize("variant", ["tangent", "tangent_gauge", "strict"])
def test_empty_remove_basis_is_a_no_op(variant):
    A, B, dA, dB, _ = _problem()
    for basis in (None, torch.zeros(6, 0, dtype=F64)):
        out = rectify(variant, A, B, dA, dB, basis)
        assert torch.equal(out[0], dA) and torch.equal(out[1], dB)


def test_dispatch_off_and_unknown_names():
    A, B, dA, dB, V = _problem()
    assert rectify("off", A, B, dA, dB, V) == (dA, dB)
    with pytest.raises(ValueError, match="tangent_gauge"):
        rectify("tangential", A, B, dA, dB, V)
    with pytest.raises(ValueError, match="retain"):
        rectify("tangent", A, B, dA, dB, V, mode="keep")
    assert set(VARIANTS) == {"tangent", "tangent_gauge", "strict", "off"}


def test_balanced_ridge_bounds_the_a_update_while_b_is_small():
    """With a relative ridge only, ΔA* grows like 1/‖B‖; the balance term keeps it at the scale of ΔA."""
    torch.manual_seed(3)
    r, d, m, k = 4, 24, 20, 6
    A, dA, dB = torch.randn(r, d, dtype=torch.float64), torch.randn(r, d, dtype=torch.float64), torch.randn(m, r, dtype=torch.float64)
    V = torch.linalg.qr(torch.randn(d, k, dtype=torch.float64))[0]
    sizes = {}
    for scale in (1e-2, 1e-4):
        B = scale * torch.randn(m, r, dtype=torch.float64)
        plain = rectify_tangent(A, B, dA, dB, V)[0].norm() / dA.norm()
        balanced = rectify_tangent(A, B, dA, dB, V, balance=1e-2)[0].norm() / dA.norm()
        sizes[scale] = (plain.item(), balanced.item())
    assert sizes[1e-4][0] > 50 * sizes[1e-2][0]          # the paper's relative ridge blows up as B -> 0
    assert sizes[1e-4][1] < 2 and sizes[1e-2][1] < 2     # balanced: bounded
    B = torch.randn(m, r, dtype=torch.float64)           # well-scaled B: balance changes little
    plain, balanced = rectify_tangent(A, B, dA, dB, V), rectify_tangent(A, B, dA, dB, V, balance=1e-2)
    assert violation(A, B, *balanced, V) < violation(A, B, dA, dB, V)
    assert (composite_update(A, B, *plain) - composite_update(A, B, *balanced)).norm() < 0.05 * composite_update(A, B, *plain).norm()
