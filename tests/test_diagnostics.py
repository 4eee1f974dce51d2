import torch

from janus.diagnostics import interference_ratio, low_rank_delta


def test_interference_equals_dense_ratio_on_samples():
    torch.manual_seed(0)
    x = torch.randn(16, 200, dtype=torch.float64)          # d_in x N past inputs
    dw = torch.randn(8, 16, dtype=torch.float64)
    dense = torch.linalg.norm(dw @ x) / torch.linalg.norm(x)
    assert abs(interference_ratio(dw, x @ x.T) - dense.item()) < 1e-10
    assert abs(interference_ratio(dw, (x @ x.T) / 200) - dense.item()) < 1e-10  # scale-free


def test_update_orthogonal_to_past_inputs_has_no_interference():
    torch.manual_seed(1)
    basis = torch.linalg.qr(torch.randn(16, 4, dtype=torch.float64))[0]
    x = basis @ torch.randn(4, 50, dtype=torch.float64)     # past inputs live in span(basis)
    dw = torch.randn(8, 16, dtype=torch.float64) @ (torch.eye(16, dtype=torch.float64) - basis @ basis.T)
    assert interference_ratio(dw, x @ x.T) < 1e-10
    a0, b0 = torch.randn(3, 16), torch.randn(8, 3)
    a1, b1 = a0 + 0.1, b0 * 2
    torch.testing.assert_close(low_rank_delta(a0, b0, a1, b1, 0.5), 0.5 * (b1 @ a1 - b0 @ a0))


def test_lowrank_interference_equals_the_dense_formula_without_forming_delta_w():
    import torch

    from janus.diagnostics import interference_ratio, low_rank_delta, lowrank_interference_ratio

    torch.manual_seed(0)
    a0, a1 = torch.randn(4, 32), torch.randn(4, 32)
    b0, b1 = torch.randn(24, 4), torch.randn(24, 4)
    x = torch.randn(32, 200)
    c = x @ x.T
    dense = interference_ratio(low_rank_delta(a0, b0, a1, b1, 0.5), c)
    direct = (0.5 * (b1 @ a1 - b0 @ a0) @ x).norm() / x.norm()        # ‖ΔW X‖_F / ‖X‖_F itself
    assert abs(lowrank_interference_ratio(a0, b0, a1, b1, 0.5, c) - dense) < 1e-6 * dense   # ΔW above is fp32
    assert abs(dense - float(direct)) < 1e-4
