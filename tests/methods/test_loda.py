import importlib
import itertools
import math

import pytest
import scipy.linalg
import torch
from torch.nn import functional as F

from janus.config import ExperimentConfig
from janus.errors import UserError
from janus.methods import build_options
from janus.methods._loda_math import (
    energy_ratio,
    general_subspace,
    isolated_subspace,
    merge_moments,
    recalibration,
)
from janus.protocol import run_experiment
from janus.testing import build_tiny, task_info
from janus.training import train_task

PARAMS = {"method.name": "loda"}


def projector(U):
    Q = torch.linalg.qr(U.double())[0]
    return Q @ Q.t()


def moment(X):
    return X.t() @ X / len(X)


def constructed_moments():
    """Old tasks live on coordinates 0-3; the new task shares coordinate 0 and adds a weak new one, 6."""
    torch.manual_seed(0)
    old = torch.randn(400, 8) * torch.tensor([3.0, 2, 2, 1, 0.05, 0.05, 0.05, 0.05])
    new = torch.randn(300, 8) * torch.tensor([3.0, 0.3, 0.3, 0.3, 0.05, 0.05, 1.0, 0.05])
    return moment(old), moment(new)


def test_isolated_subspace_equals_the_dense_generalized_eigensolution():
    S_old, S_new = constructed_moments()
    ridge = 1e-3
    U, mu = isolated_subspace(S_old, S_new, 2, ridge)
    delta = ridge * float(torch.trace(S_old + S_new)) / 8
    values, vectors = scipy.linalg.eigh(S_new.double().numpy(), (S_old.double() + delta * torch.eye(8)).numpy())
    torch.testing.assert_close(mu.double(), torch.tensor(values[::-1][:2].copy()), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(projector(U), projector(torch.tensor(vectors[:, -2:])), atol=1e-5, rtol=0)
    torch.testing.assert_close(U.t() @ U, torch.eye(2), atol=1e-5, rtol=0)


def test_isolated_direction_maximises_the_energy_ratio_where_the_general_one_maximises_energy():
    S_old, S_new = constructed_moments()
    u_isolated = isolated_subspace(S_old, S_new, 1, 1e-3)[0]
    u_general = general_subspace(S_old, S_new, 1)
    assert abs(float(u_isolated[6])) > 0.99 and abs(float(u_general[0])) > 0.99
    delta = 1e-3 * float(torch.trace(S_old + S_new)) / 8
    S_den = S_old + delta * torch.eye(8)
    best = energy_ratio(u_isolated, S_new, S_den)
    candidates = torch.nn.functional.normalize(torch.randn(20000, 8, generator=torch.Generator().manual_seed(1)),
                                               dim=1)
    brute_force = (candidates @ S_new * candidates).sum(1) / (candidates @ S_den * candidates).sum(1)
    assert best >= float(brute_force.max()) - 1e-6 and best > 10 * energy_ratio(u_general, S_new, S_den)
    energies = (candidates @ (S_old + S_new) * candidates).sum(1)
    assert energy_ratio(u_general, S_old + S_new, torch.eye(8)) >= float(energies.max()) - 1e-5


def drift_objective(Lam, A, B, X_new, X_old, beta):
    new_part = X_new @ A.t() @ (Lam - torch.eye(len(Lam), dtype=Lam.dtype)).t() @ B.t()
    old_part = X_old @ A.t() @ Lam.t() @ B.t()
    return new_part.square().sum() / len(X_new) + beta * old_part.square().sum() / len(X_old)


def test_recalibration_equals_the_dense_least_squares_solution():
    torch.manual_seed(2)
    X_new, X_old = torch.randn(60, 7).double(), torch.randn(90, 7).double() @ torch.diag(torch.arange(1.0, 8).double())
    A, B, beta = torch.randn(3, 7).double(), torch.randn(5, 3).double(), 1.5
    Lam = recalibration(A, moment(X_new), moment(X_old), beta)
    # vec_r(Z Λᵀ Bᵀ) = (Z ⊗ B) vec_r(Λᵀ): stack both residuals of the drift objective as one least squares
    Z_new, Z_old = X_new @ A.t() / math.sqrt(len(X_new)), X_old @ A.t() * math.sqrt(beta / len(X_old))
    design = torch.cat([torch.kron(Z_new, B), torch.kron(Z_old, B)])
    target = torch.cat([(Z_new @ B.t()).reshape(-1), torch.zeros(len(Z_old) * 5, dtype=torch.float64)])
    dense = torch.linalg.lstsq(design, target.unsqueeze(1)).solution.reshape(3, 3).t()
    torch.testing.assert_close(Lam, dense, atol=1e-8, rtol=1e-6)
    value = drift_objective(Lam, A, B, X_new, X_old, beta)
    eye = torch.eye(3, dtype=torch.float64)
    assert value < drift_objective(eye, A, B, X_new, X_old, beta)
    assert value < drift_objective(0 * eye, A, B, X_new, X_old, beta)


def test_merged_moment_is_the_moment_of_all_tokens():
    X, Y = torch.randn(30, 4), torch.randn(50, 4)
    torch.testing.assert_close(merge_moments(moment(X), 30, moment(Y), 50), moment(torch.cat([X, Y])))
    torch.testing.assert_close(merge_moments(None, 0, moment(Y), 50), moment(Y))


def build(tiny, **overrides):
    return build_tiny(tiny(**{**PARAMS, **overrides}))


def branch_snapshot(method):
    return {s.name: [p.detach().clone() for pair in method.branches(s) for p in (pair.A, pair.B)]
            for s in method.slices}


def test_two_tasks_build_the_subspaces_train_only_b_and_merge_the_recalibrated_update(tiny):
    cfg, scenario, method = build(tiny, **{"method.general_weight": 0.5})
    starts = []
    method.before_epoch = lambda task, epoch: starts.append(branch_snapshot(method))
    first = task_info(cfg, scenario.tasks[0], 2)
    train_task(method, first, cfg.optim, cfg.seed)
    method.after_task(first)
    S_old, n_old = dict(method.old_moments), method.old_count
    second = task_info(cfg, scenario.tasks[1], 2)
    train_task(method, second, cfg.optim, cfg.seed)
    for adapted in method.slices:
        A_G, B_G, A_I, B_I = [p.detach() for pair in method.branches(adapted) for p in (pair.A, pair.B)]
        start = starts[-1][adapted.name]
        assert torch.equal(A_G, start[0]) and torch.equal(A_I, start[2])             # A fixed
        assert not torch.equal(B_G, start[1]) and not torch.equal(B_I, start[3])     # B trained
        S_new, S_prev = method._task_moments[adapted.site], S_old[adapted.site]
        torch.testing.assert_close(projector(A_G.t()), projector(general_subspace(S_prev, S_new, 4)), atol=1e-4,
                                   rtol=0)
        torch.testing.assert_close(A_G @ A_G.t(), 0.25 * torch.eye(4), atol=1e-5, rtol=0)   # w_G = 0.5
        U_I = isolated_subspace(S_prev, S_new, 4, 1e-3)[0]
        torch.testing.assert_close(projector(A_I.t()), projector(U_I), atol=1e-4, rtol=0)
        assert energy_ratio(A_I.t(), S_new, S_prev) > energy_ratio(A_G.t(), S_new, S_prev)
    adapted = method.slices[3]
    A_G, B_G, A_I, B_I = [p.detach().clone() for pair in method.branches(adapted) for p in (pair.A, pair.B)]
    beta = n_old / method._task_count
    Lam = recalibration(A_G, method._task_moments[adapted.site], S_old[adapted.site], beta)
    before = adapted.base_weight().clone()
    method.after_task(second)
    torch.testing.assert_close(adapted.base_weight() - before, B_G @ Lam @ A_G + B_I @ A_I, atol=1e-6, rtol=1e-5)
    assert all(pair.B.abs().max() == 0 for s in method.slices for pair in method.branches(s))
    assert method.old_count == n_old + method._task_count


def test_gao_steps_from_the_unperturbed_point_with_the_first_half_gradient_at_the_moved_point(tiny):
    cfg, scenario, method = build(tiny, **{"method.rho_max": 0.5})
    info = task_info(cfg, scenario.tasks[0], 2)
    method.before_task(info)
    params = method.trainable_parameters()
    with torch.no_grad():
        for p in params:
            p.normal_(std=0.1)
    start = [p.detach().clone() for p in params]
    x, y = torch.rand(6, 3, 32, 32), torch.tensor([0, 1, 0, 1, 1, 0])
    method.train()
    torch.manual_seed(5)
    method.loss(method(x), y, info).backward()
    method.after_backward(info)
    assert all(torch.equal(p, s) for p, s in zip(params, start))
    got = [p.grad.clone() for p in params]
    # reference: ε = ρ ∇L_2/‖∇L_2‖ with the same ρ draw, then ∇L_1 at θ + ε
    probe = F.cross_entropy(method(x[3:]).logits, y[3:])
    grads = torch.autograd.grad(probe, params)
    torch.manual_seed(5)
    rho = 0.5 * torch.rand(()).item()
    norm = torch.sqrt(sum(g.square().sum() for g in grads))
    with torch.no_grad():
        for p, g in zip(params, grads):
            p.add_(rho * g / norm)
    expected = torch.autograd.grad(F.cross_entropy(method(x[:3]).logits, y[:3]), params)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, atol=1e-6, rtol=1e-4)
    assert max((g - e).abs().max() for g, e in zip(got, grads)) > 1e-6   # not the plain second-half gradient


def test_checkpoint_restores_the_merged_weights_and_old_moments(tiny):
    cfg, scenario, method = build(tiny)
    info = task_info(cfg, scenario.tasks[0], 2)
    train_task(method, info, cfg.optim, cfg.seed)
    method.after_task(info)
    _, _, fresh = build(tiny)
    fresh.load_checkpoint(method.checkpoint_state())
    x = torch.rand(2, 3, 32, 32)
    method.eval(), fresh.eval()
    torch.testing.assert_close(fresh.predict(x), method.predict(x))
    assert fresh.old_count == method.old_count > 0
    torch.testing.assert_close(fresh.old_moments["blocks.2.attn.qkv"], method.old_moments["blocks.2.attn.qkv"])


def test_bad_gao_direction_is_a_user_error(tiny):
    with pytest.raises(UserError, match="gao_direction"):
        build(tiny, **{"method.gao_direction": "sideways"})


def test_runs_end_to_end(tiny):
    result = run_experiment(tiny(**PARAMS))
    assert result.acc_matrix.shape == (2, 2) and all(math.isfinite(v) for v in result.metrics.values())
    assert math.isfinite(result.diagnostics[1]["loda_isolated_energy_ratio"])
    assert result.diagnostics[0]["loda_recalibration_trace"] == pytest.approx(1.0, abs=1e-3)


def test_search_space_keys_and_values_are_valid_options():
    space = importlib.import_module("search_spaces.loda")
    assert space.METHOD == "loda" and "--search-space loda" in space.__doc__
    choices = {key: getattr(domain, "categories", [domain.sample()]) for key, domain in space.SPACE.items()}
    for values in itertools.product(*choices.values()):
        cfg = ExperimentConfig.from_dict({"method.name": space.METHOD, **dict(zip(choices, values))})
        build_options(space.METHOD, cfg.method.params)
