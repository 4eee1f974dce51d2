"""Covariances, energy-threshold bases and activation hooks (janus/subspace.py); docs/method.md §3,
docs/protocol.md §7."""

import pytest
import torch
from torch import nn

from janus.subspace import (
    ActivationRecorder,
    BlockBases,
    CovarianceAccumulator,
    DualBasis,
    complement_basis,
    energy_threshold,
    expand_basis,
    gpm_expand_basis,
    post_task_statistics,
    representation_from_covariance,
)

F64 = torch.float64


def _rotation(d, seed=0):
    return torch.linalg.qr(torch.randn(d, d, dtype=F64, generator=torch.Generator().manual_seed(seed)))[0]


def _covariance(spectrum, seed=0):
    """Ĉ = Q diag(spectrum) Qᵀ with a random rotation Q; returns (Ĉ, Q)."""
    Q = _rotation(len(spectrum), seed)
    return Q @ torch.diag(torch.tensor(spectrum, dtype=F64)) @ Q.T, Q


def _projector(V):
    return V @ V.T


def _activations(n, d, seed=0):
    """Tokens with a spectrum of distinct variances, shaped (batch, tokens, d)."""
    gen = torch.Generator().manual_seed(seed)
    scales = torch.linspace(3.0, 0.1, d, dtype=F64)
    return (torch.randn(n, d, dtype=F64, generator=gen) * scales @ _rotation(d, seed + 1).T).reshape(-1, 4, d)


def test_energy_threshold_linear_schedule():
    assert energy_threshold(0, 10, 0.95) == 0.95
    assert energy_threshold(5, 10, 0.95) == pytest.approx(0.975)
    assert energy_threshold(2, 4, 0.9, 0.98) == pytest.approx(0.94)


def test_accumulating_in_batches_equals_one_batch():
    x = _activations(64, 6)
    whole = CovarianceAccumulator(dtype=F64)
    whole.update(x)
    parts = CovarianceAccumulator(dtype=F64)
    for chunk in x.split(3):
        parts.update(chunk)
    flat = x.reshape(-1, 6)
    assert parts.count == whole.count == flat.shape[0]
    assert torch.allclose(parts.mean(), whole.mean())
    assert torch.allclose(whole.mean(), flat.T @ flat / flat.shape[0])
    parts.reset()
    with pytest.raises(RuntimeError):
        parts.mean()


def test_ema_mode_weights_recent_batches():
    first, second = torch.ones(2, 3, dtype=F64), 2 * torch.ones(2, 3, dtype=F64)
    ema = CovarianceAccumulator(dtype=F64, ema_decay=0.75)
    ema.update(first)
    assert torch.allclose(ema.mean(), torch.ones(3, 3, dtype=F64))
    ema.update(second)
    assert torch.allclose(ema.mean(), (0.75 * 1 + 0.25 * 4) * torch.ones(3, 3, dtype=F64))


def test_accumulator_rejects_wrong_width_and_detaches():
    acc = CovarianceAccumulator(dim=4)
    with pytest.raises(ValueError, match="last dimension 4"):
        acc.update(torch.zeros(2, 5))
    x = torch.randn(3, 4, requires_grad=True)
    acc.update(x)
    assert not acc.mean().requires_grad


def test_online_basis_equals_batch_eigendecomposition():
    x = _activations(96, 8, seed=3)
    online = CovarianceAccumulator(dtype=F64)
    for chunk in x.split(5):
        online.update(chunk)
    flat = x.reshape(-1, 8)
    evals, evecs = torch.linalg.eigh(flat.T @ flat / flat.shape[0])
    evals, evecs = evals.flip(0), evecs.flip(1)
    k = int((torch.cumsum(evals, 0) / evals.sum() < 0.9).sum()) + 1
    V = expand_basis(None, online.mean(), 0.9)
    assert V.shape == (8, k)
    assert torch.allclose(_projector(V), _projector(evecs[:, :k]), atol=1e-8)


SPECTRUM = [4.0, 2.0, 1.0, 1.0, 0.0, 0.0]  # cumulative energy share: 0.5, 0.75, 0.875, 1.0


@pytest.mark.parametrize("eps, k", [(0.5, 1), (0.75, 2), (0.7500001, 3), (0.875, 3), (0.9, 4), (1.0, 4)])
def test_eig_criterion_picks_smallest_k_reaching_threshold(eps, k):
    C, Q = _covariance(SPECTRUM)
    V = expand_basis(None, C, eps)
    assert V.shape[1] == k
    top = min(k, 2)  # the top two eigenvalues are distinct, so their directions are identifiable
    assert torch.allclose(_projector(V[:, :top]), _projector(Q[:, :top]), atol=1e-8)


# λ² shares: 16/22, 20/22, 21/22, 22/22
@pytest.mark.parametrize(
    "eps, k", [(16 / 22, 1), (0.75, 2), (20 / 22, 2), (0.95, 3), (21 / 22, 3), (0.99, 4)]
)
def test_eig_sq_criterion_uses_squared_eigenvalues(eps, k):
    C, _ = _covariance(SPECTRUM, seed=1)
    assert expand_basis(None, C, eps, criterion="eig_sq").shape[1] == k


def test_expansion_accounts_for_energy_already_covered():
    C, Q = _covariance(SPECTRUM, seed=2)
    V0 = Q[:, 1:2]  # covers 2/8 of the energy
    V = expand_basis(V0, C, 0.75)  # needs 4/8 more: exactly the top residual direction
    assert V.shape[1] == 2
    assert torch.equal(V[:, :1], V0)
    assert torch.allclose(_projector(V), _projector(Q[:, :2]), atol=1e-8)
    assert expand_basis(Q[:, :2], C, 0.7).shape[1] == 2  # already covered: nothing added
    assert expand_basis(V0, C, 0.75, criterion="eig_sq").shape[1] == 2  # (4 + 16) / 22 ≥ 0.75


def test_basis_stays_orthonormal_over_many_expansions_and_respects_max_dim():
    V = None
    for seed in range(6):
        x = _activations(40, 16, seed=seed).reshape(-1, 16)
        V = expand_basis(V, x.T @ x, 0.95, max_dim=12)
        assert torch.allclose(V.T @ V, torch.eye(V.shape[1], dtype=F64), atol=1e-6)
    assert V.shape[1] == 12
    assert expand_basis(None, _covariance(SPECTRUM)[0], 1.0, max_dim=2).shape[1] == 2


def test_zero_statistic_and_float32_inputs():
    assert expand_basis(None, torch.zeros(5, 5), 0.9).shape == (5, 0)
    C = _covariance(SPECTRUM)[0].float()
    V = expand_basis(torch.zeros(6, 0), C, 0.7)
    assert V.dtype == torch.float32 and V.shape == (6, 2)
    with pytest.raises(ValueError, match="eig_sq"):
        expand_basis(None, C, 0.9, criterion="sigma")


def test_gpm_first_task_uses_code_count_convention():
    C, _ = _covariance(SPECTRUM, seed=4)
    R = representation_from_covariance(C)  # σ² = λ: shares 0.5, 0.75, 0.875, 1.0
    assert gpm_expand_basis(None, R, 0.75).shape[1] == 1  # #{c_i < 0.75} = 1
    assert gpm_expand_basis(None, R, 0.8).shape[1] == 2
    assert gpm_expand_basis(None, R, 0.3).shape[1] == 1  # max(k, 1) guard
    assert gpm_expand_basis(None, C, 0.8).shape[1] == 1  # C itself: InfLoRA's λ² rule, 16/22 < 0.8 < 20/22


def test_gpm_later_task_walks_residual_energy():
    C, Q = _covariance([4.0, 2.0, 1.0, 0.5, 0.5, 0.0], seed=5)
    R = representation_from_covariance(C)
    V0 = Q[:, :1]  # covers 0.5
    assert torch.equal(gpm_expand_basis(V0, R, 0.5), V0)  # r = 0: unchanged
    V = gpm_expand_basis(V0, R, 0.8)  # 0.5 → 0.75 → 0.875 stops: two added
    assert V.shape[1] == 3
    assert torch.allclose(_projector(V), _projector(Q[:, :3]), atol=1e-8)


def test_dual_basis_flips_to_retain_and_keeps_the_same_protected_space():
    C, _ = _covariance([8.0, 7.0, 6.0, 5.0, 1.0, 0.5], seed=6)
    dual, plain = DualBasis.empty(6, dtype=F64), None
    for eps in (0.3, 0.75, 0.9):
        dual.update_oe(C, eps)
        plain = expand_basis(plain, C, eps)
        assert torch.allclose(_projector(dual.protected_basis()), _projector(plain), atol=1e-8)
    assert dual.mode == "retain" and dual.basis.shape[1] == 6 - plain.shape[1]
    assert dual.protected_dim() == plain.shape[1] == 4


def test_block_bases_oe_rule_is_expand_basis_per_block_keyed_by_site():
    from janus.lora import Site

    C0, _ = _covariance([8.0, 7.0, 6.0, 5.0, 1.0, 0.5], seed=6)
    C1, _ = _covariance([5.0, 1.0, 1.0, 0.5, 0.2, 0.1], seed=7)
    bases, plain = BlockBases("eig", rule="oe"), {0: None, 1: None}
    for eps in (0.3, 0.6):
        bases.update({Site(0): C0, "blocks.1.attn.qkv": C1}, eps)   # sites and plain names both work
        plain = {0: expand_basis(plain[0], C0, eps), 1: expand_basis(plain[1], C1, eps)}
        for block in (0, 1):
            assert torch.equal(bases.bases[block].basis, plain[block])
    assert bases.protected_dim(0) == plain[0].shape[1] and bases.protected_dim(5) == 0
    assert bases.any_protected() and not BlockBases(rule="oe").any_protected()


def test_dual_gpm_retain_mode_removes_until_protected_energy_reaches_threshold():
    # σ² shares of 30, cumulative: 8, 15, 21, 26, 29, 30
    C, Q = _covariance([8.0, 7.0, 6.0, 5.0, 3.0, 1.0], seed=7)
    R = representation_from_covariance(C)
    dual = DualBasis.empty(6, dtype=F64)
    dual.update_gpm(R, 0.8)  # first task: #{c_i < 0.8} = 3 = d/2, stays in remove mode
    assert dual.mode == "remove" and dual.protected_dim() == 3
    dual = DualBasis.empty(6, dtype=F64)
    dual.update_gpm(R, 0.9)  # #{c_i < 0.9} = 4 > d/2: flips to retain, storing the complement
    assert dual.mode == "retain" and dual.basis.shape[1] == 2
    assert torch.allclose(_projector(dual.basis), _projector(Q[:, 4:]), atol=1e-8)
    dual.update_gpm(R, 0.95)  # free energy 4/30 ≥ 0.05 → remove the 3 → 1/30 < 0.05 stops
    assert dual.protected_dim() == 5
    assert torch.allclose(_projector(dual.basis), _projector(Q[:, 5:]), atol=1e-8)


def test_complement_basis_spans_the_orthogonal_complement():
    V = _rotation(7)[:, :3]
    U = complement_basis(V)
    assert U.shape == (7, 4)
    assert torch.allclose(_projector(U) + _projector(V), torch.eye(7, dtype=F64), atol=1e-10)


def _two_layer_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))


def test_recorder_feeds_module_inputs_and_respects_pause():
    model = _two_layer_model()
    x = torch.randn(2, 6, 5)
    with ActivationRecorder({"first": model[0], "last": model[2]}, dtype=F64) as recorder:
        model(x)
        with recorder.paused():
            model(torch.randn(3, 5))
        recorder.enabled = False
        model(torch.randn(3, 5))
    tokens = x.reshape(-1, 5).double()
    hidden = torch.relu(model[0](x)).reshape(-1, 4).double()
    assert recorder.accumulators["first"].count == 12
    assert torch.allclose(recorder.accumulators["first"].mean(), tokens.T @ tokens / 12, atol=1e-6)
    assert torch.allclose(recorder.accumulators["last"].mean(), hidden.T @ hidden / 12, atol=1e-6)


def test_recorder_removes_hooks_on_exit_and_on_exception():
    model = _two_layer_model()
    modules = {"first": model[0], "last": model[2]}
    with ActivationRecorder(modules):
        assert all(len(m._forward_pre_hooks) == 1 for m in modules.values())
    assert all(len(m._forward_pre_hooks) == 0 for m in modules.values())
    with pytest.raises(KeyError), ActivationRecorder(modules):
        raise KeyError("boom")
    assert all(len(m._forward_pre_hooks) == 0 for m in modules.values())
    recorder = ActivationRecorder(modules).start()
    recorder.stop()
    model(torch.randn(1, 5))
    assert recorder.accumulators["first"].count == 0


def test_post_task_statistics_over_a_loader():
    model = _two_layer_model()
    batches = [(torch.randn(4, 5), torch.zeros(4)) for _ in range(3)]
    stats = post_task_statistics(
        lambda batch: model(batch[0]), batches, {"first": model[0]}, dtype=F64, max_batches=2
    )
    seen = torch.cat([b[0] for b in batches[:2]]).double()
    assert torch.allclose(stats["first"], seen.T @ seen / 8, atol=1e-6)
    assert len(model[0]._forward_pre_hooks) == 0


def test_recorder_accumulates_in_fp32_under_bf16_autocast():
    """The OE hook fires inside the training autocast; its running XᵀX must stay fp32 (issue: bf16 drift)."""
    torch.manual_seed(0)
    layer = nn.Linear(32, 8)
    batches = [torch.randn(16, 5, 32) + 0.3 for _ in range(850)]
    reference = sum(b.reshape(-1, 32).double().mT @ b.reshape(-1, 32).double() for b in batches)
    with ActivationRecorder({"qkv": layer}) as recorder, torch.autocast("cpu", dtype=torch.bfloat16):
        for batch in batches:
            layer(batch)
    accumulator = recorder.accumulators["qkv"]
    assert accumulator.moment.dtype == torch.float32
    error = (accumulator.moment.double() - reference).norm() / reference.norm()
    assert error < 1e-5
    assert accumulator.count == 850 * 16 * 5


def test_prototype_bank_sums_in_fp32_under_bf16_autocast():
    from janus.margin import PrototypeBank

    torch.manual_seed(0)
    bank = PrototypeBank(8)
    features = [torch.randn(64, 8) + 5.0 for _ in range(200)]
    labels = [torch.arange(64) % 2 for _ in range(200)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for f, y in zip(features, labels):
            bank.accumulate(f, y)
    means = bank.finalize()
    stacked, ys = torch.cat(features).double(), torch.cat(labels)
    reference = torch.stack([stacked[ys == c].mean(0) for c in (0, 1)])
    assert (means.double() - reference).abs().max() < 1e-5


@pytest.mark.parametrize("criterion", ["eig", "eig_sq"])
def test_float32_eigendecomposition_picks_the_same_basis_within_tolerance(criterion):
    """OE's task-end eigh in float32 (method.oe_precision=float32) against the float64 reference: the same
    count k at every task and the same protected space, on a ViT-like decaying spectrum (d = 192)."""
    d = 192
    spectrum = (torch.arange(1, d + 1, dtype=F64) ** -1.5).tolist()
    V64 = V32 = None
    for task in range(3):
        C, _ = _covariance(spectrum, seed=20 + task)
        C32 = C.float()
        V64 = expand_basis(V64, C32, 0.9 + 0.03 * task, criterion)
        V32 = expand_basis(V32, C32, 0.9 + 0.03 * task, criterion, work_dtype=torch.float32)
        assert V32.dtype == torch.float32 and V32.shape == V64.shape
        gap = (_projector(V32.double()) - _projector(V64.double())).abs().max()
        assert gap < 1e-3, f"task {task}: projectors differ by {gap:.2e}"
        assert (V32.double().T @ V32.double() - torch.eye(V32.shape[1], dtype=F64)).abs().max() < 1e-5
