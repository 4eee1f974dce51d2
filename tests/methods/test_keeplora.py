import importlib
import itertools
import math

import pytest
import torch

from janus.config import ExperimentConfig
from janus.errors import UserError
from janus.methods import build_options
from janus.methods.keeplora import residual_gradient_init, weight_protected_basis
from janus.protocol import run_experiment
from janus.testing import build_tiny, task_info
from janus.training import train_task

PARAMS = {"method.name": "keeplora"}


def orthonormal(d, k, seed=0):
    return torch.linalg.qr(torch.randn(d, k, generator=torch.Generator().manual_seed(seed)))[0]


def test_residual_gradient_init_is_the_truncated_svd_of_the_projected_gradient():
    torch.manual_seed(0)
    grad, protected = torch.randn(9, 12), orthonormal(12, 4)
    A, B0 = residual_gradient_init(grad, protected, rank=3)
    residual = (torch.eye(12) - protected @ protected.t()) @ grad.t()          # d_in × d_out
    U, S, Vh = torch.linalg.svd(residual)
    torch.testing.assert_close((B0 @ A).t(), U[:, :3] @ torch.diag(S[:3]) @ Vh[:3], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(A @ A.t(), torch.eye(3), atol=1e-5, rtol=0)
    assert (A @ protected).abs().max() < 1e-6


def test_residual_gradient_init_stays_orthogonal_when_the_residual_is_rank_deficient():
    protected = orthonormal(8, 5)
    grad = torch.randn(8, 1) @ (protected[:, :1].t() + 0.5 * orthonormal(8, 6)[:, 5:].t())  # rank-1 residual
    A, _ = residual_gradient_init(grad, protected, rank=3)
    assert (A @ protected).abs().max() < 1e-6
    torch.testing.assert_close(A @ A.t(), torch.eye(3), atol=1e-5, rtol=0)


def test_weight_basis_spans_the_top_singular_vectors_by_the_gpm_rule():
    U, V = orthonormal(10, 10, 1), orthonormal(10, 10, 2)
    weight = U @ torch.diag(torch.tensor([4.0, 3, 2, 1, 0.5, 0.4, 0.3, 0.2, 0.1, 0.1])) @ V.t()
    # σ² energy 16, 25, 29, 30 of 30.61: the GPM rule keeps the 2 columns whose cumulative share stays < 0.85
    basis = weight_protected_basis(weight, 0.85, "input", max_dim=8)
    torch.testing.assert_close(basis @ basis.t(), V[:, :2] @ V[:, :2].t(), atol=1e-5, rtol=0)
    basis = weight_protected_basis(weight, 0.85, "output", max_dim=8)
    torch.testing.assert_close(basis @ basis.t(), U[:, :2] @ U[:, :2].t(), atol=1e-5, rtol=0)


def build(tiny, **overrides):
    return build_tiny(tiny(**{**PARAMS, **overrides}))


def snapshot_at_first_epoch(method):
    """Record A, B and the protected bases when training starts (after before_task designed A)."""
    snapshots = []

    def before_epoch(task, epoch):
        snapshots.append({"A": {s.name: s.pair.A.detach().clone() for s in method.slices},
                          "B": {s.name: s.pair.B.detach().clone() for s in method.slices},
                          "M": dict(method.protected)})

    method.before_epoch = before_epoch
    return snapshots


def test_a_is_orthogonal_to_the_protected_subspace_and_fixed_while_b_trains(tiny):
    cfg, scenario, method = build(tiny)
    snapshots = snapshot_at_first_epoch(method)
    initial_dims = {name: basis.shape[1] for name, basis in method.protected.items()}
    for task in scenario.tasks:
        info = task_info(cfg, task, 2)
        train_task(method, info, cfg.optim, cfg.seed)
        start = snapshots[-1]
        for adapted in method.slices:
            name = adapted.name
            assert (start["A"][name] @ start["M"][name]).abs().max() < 1e-5
            assert torch.equal(adapted.pair.A, start["A"][name])                # A fixed
            assert not torch.equal(adapted.pair.B, start["B"][name])           # B trained
        x = torch.rand(4, 3, 32, 32)
        method.eval()
        before_merge = method.predict(x)
        method.after_task(info)
        torch.testing.assert_close(method.predict(x), before_merge, atol=1e-5, rtol=1e-4)  # merge is exact
        assert all(s.pair.B.abs().max() == 0 for s in method.slices)
    grown = [method.protected[n].shape[1] > initial_dims[n] for n in initial_dims]
    assert any(grown) and all(method.protected[n].shape[1] >= initial_dims[n] for n in initial_dims)
    # task 1's protected subspace held the weight space and the task-0 features
    assert all(snapshots[1]["M"][n].shape[1] >= initial_dims[n] for n in initial_dims)


def test_checkpoint_keeps_the_merged_weights_and_protected_bases(tiny):
    cfg, scenario, method = build(tiny)
    info = task_info(cfg, scenario.tasks[0], 2)
    train_task(method, info, cfg.optim, cfg.seed)
    method.after_task(info)
    _, _, fresh = build(tiny)
    fresh.load_checkpoint(method.checkpoint_state())
    first = method.slices[0]
    torch.testing.assert_close(fresh.slices[0].base_weight(), first.base_weight())
    torch.testing.assert_close(fresh.protected[first.name], method.protected[first.name])


def test_per_task_structure_is_a_user_error(tiny):
    with pytest.raises(UserError, match="lora.structure"):
        build(tiny, **{"lora.structure": "per_task"})


def test_runs_end_to_end(tiny):
    result = run_experiment(tiny(**PARAMS))
    assert result.acc_matrix.shape == (2, 2) and all(math.isfinite(v) for v in result.metrics.values())
    assert 0 < result.diagnostics[0]["keeplora_protected_dim"] <= result.diagnostics[1]["keeplora_protected_dim"]


def test_search_space_keys_and_values_are_valid_options():
    space = importlib.import_module("search_spaces.keeplora")
    assert space.METHOD == "keeplora" and "--search-space keeplora" in space.__doc__
    choices = {key: getattr(domain, "categories", [domain.sample()]) for key, domain in space.SPACE.items()}
    for values in itertools.product(*choices.values()):
        cfg = ExperimentConfig.from_dict({"method.name": space.METHOD, **dict(zip(choices, values))})
        build_options(space.METHOD, cfg.method.params)
