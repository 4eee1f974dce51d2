import importlib
import itertools
import math

import pytest
import torch

from janus.config import ExperimentConfig
from janus.errors import UserError
from janus.methods import build_options
from janus.methods._frequency import disjoint_supports, frequency_update
from janus.protocol import run_experiment
from janus.testing import build_tiny, task_info
from janus.training import train_task

PARAMS = {"method.name": "bilora", "method.n_frq": 300, "method.alpha": 30.0}


def dense_idft_update(coefficients, supports, shape, alpha):
    """α/(MN) Σ_j c_j cos(2π(m k1_j/M + n k2_j/N)), summed over tasks, one frequency at a time."""
    M, N = shape
    m, n = torch.meshgrid(torch.arange(M, dtype=torch.float64), torch.arange(N, dtype=torch.float64),
                          indexing="ij")
    total = torch.zeros(M, N, dtype=torch.float64)
    for values, indices in zip(coefficients, supports):
        for value, index in zip(values.double(), indices.tolist()):
            k1, k2 = divmod(index, N)
            total += value * torch.cos(2 * math.pi * (m * k1 / M + n * k2 / N))
    return alpha * total / (M * N)


def test_frequency_update_equals_dense_inverse_dft():
    torch.manual_seed(0)
    supports = disjoint_supports(6 * 10, 7, 3, seed=1)
    coefficients = [torch.randn(7) for _ in supports]
    update = frequency_update(coefficients, supports, (6, 10), alpha=3.0)
    torch.testing.assert_close(update.double(), dense_idft_update(coefficients, supports, (6, 10), 3.0))


def test_supports_are_disjoint_seeded_and_independent_of_the_task_count():
    supports = disjoint_supports(100, 12, 5, seed=3)
    flat = torch.cat(supports)
    assert len(flat.unique()) == 60 and int(flat.min()) >= 0 and int(flat.max()) < 100
    assert torch.equal(disjoint_supports(100, 12, 2, seed=3)[1], supports[1])
    assert not torch.equal(disjoint_supports(100, 12, 2, seed=4)[0], supports[0])
    with pytest.raises(ValueError):
        disjoint_supports(100, 30, 4, seed=0)


def build(tiny, **overrides):
    return build_tiny(tiny(**{**PARAMS, **overrides}))


def test_two_tasks_train_on_disjoint_supports_and_freeze_old_coefficients(tiny):
    cfg, scenario, method = build(tiny)
    first = task_info(cfg, scenario.tasks[0], 2)
    train_task(method, first, cfg.optim, cfg.seed)
    module = method.frequency_modules["blocks.0.attn.qkv"]
    task0 = {t: module.coefficients[t][0].detach().clone() for t in module.targets}
    assert all(v.abs().sum() > 0 for v in task0.values())          # task 0 was trained
    train_task(method, task_info(cfg, scenario.tasks[1], 2), cfg.optim, cfg.seed)
    for target in module.targets:
        torch.testing.assert_close(module.coefficients[target][0], task0[target], rtol=0, atol=0)
        assert module.coefficients[target][1].abs().sum() > 0
    supports = module.supports()
    assert len(set(supports[0].tolist()) & set(supports[1].tolist())) == 0
    assert [len(s) for s in supports] == [300, 300]
    x = torch.randn(3, 64)
    expected = module.base_layer(x) + x @ module.delta_weight().t()
    torch.testing.assert_close(module(x), expected)
    assert torch.equal(module(x)[:, :64], module.base_layer(x)[:, :64])    # q is not adapted


def test_checkpoint_restores_coefficients_and_supports(tiny):
    cfg, scenario, method = build(tiny)
    train_task(method, task_info(cfg, scenario.tasks[0], 2), cfg.optim, cfg.seed)
    state = method.checkpoint_state()
    assert not any("base_layer" in k for k in state["model"])
    _, _, fresh = build(tiny)
    fresh.load_checkpoint(state)
    x = torch.rand(2, 3, 32, 32)
    method.eval(), fresh.eval()
    torch.testing.assert_close(fresh.predict(x), method.predict(x))


def test_too_many_frequencies_is_a_user_error(tiny):
    with pytest.raises(UserError, match="method.n_frq"):
        build(tiny, **{"method.n_frq": 3000})


def test_runs_end_to_end(tiny):
    result = run_experiment(tiny(**PARAMS))
    assert result.acc_matrix.shape == (2, 2) and all(math.isfinite(v) for v in result.metrics.values())
    assert all(math.isfinite(d["bilora_total_delta_norm"]) for d in result.diagnostics)


def test_search_space_keys_and_values_are_valid_options():
    space = importlib.import_module("search_spaces.bilora")
    assert space.METHOD == "bilora" and "--search-space bilora" in space.__doc__
    choices = {key: getattr(domain, "categories", [domain.sample()]) for key, domain in space.SPACE.items()}
    for values in itertools.product(*choices.values()):
        cfg = ExperimentConfig.from_dict({"method.name": space.METHOD, **dict(zip(choices, values))})
        build_options(space.METHOD, cfg.method.params)
