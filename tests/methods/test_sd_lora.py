"""SD-LoRA (docs/baselines.md §9): frozen unit-norm old directions, learnable magnitudes, RR and KD variants."""

import math

import pytest
import torch
from torch import nn

import janus
from janus.errors import UserError
from janus.lora import LoRAQKV
from janus.methods.sd_lora import MagnitudeLoRAQKV, least_squares_fold, lowrank_inner

PARAMS = {"method.name": "sd-lora"}


def test_magnitude_module_matches_the_dense_reference():
    torch.manual_seed(0)
    alphas = nn.ParameterList([nn.Parameter(torch.tensor(0.5)), nn.Parameter(torch.tensor(-2.0))])
    module = MagnitudeLoRAQKV(LoRAQKV(nn.Linear(6, 18), ("q", "v"), rank=2, scale=0.7), lambda: alphas)
    module.add_pairs(rank=3)
    for pairs in module.adapters.values():
        for pair in pairs:
            nn.init.normal_(pair.B)
    x = torch.randn(4, 6)
    dense = module.base_layer.weight.clone()
    for row, target in ((0, "q"), (2, "v")):
        pairs = module.adapters[target]
        dense[row * 6:(row + 1) * 6] += 0.7 * (0.5 * pairs[0].B @ pairs[0].A - 2.0 * pairs[1].B @ pairs[1].A)
    torch.testing.assert_close(module(x), x @ dense.T + module.base_layer.bias)
    torch.testing.assert_close(module.delta_weight() + module.base_layer.weight, dense)
    assert [p.A.shape[0] for p in module.adapters["q"]] == [2, 3]


def test_least_squares_fold_recovers_a_combination_of_old_directions():
    torch.manual_seed(0)
    old = [(torch.randn(8, 2), torch.randn(2, 5)) for _ in range(3)]
    new_B = torch.cat([2 * old[0][0], -old[2][0]], dim=1)            # D = 2 D_0 − D_2, rank 4
    new_A = torch.cat([old[0][1], old[2][1]], dim=0)
    gram = torch.stack([torch.stack([lowrank_inner(*di, *dj) for dj in old]) for di in old])
    cross = torch.stack([lowrank_inner(*di, new_B, new_A) for di in old])
    beta, residual = least_squares_fold(gram, cross, lowrank_inner(new_B, new_A, new_B, new_A))
    torch.testing.assert_close(beta, torch.tensor([2.0, 0.0, -1.0]), atol=1e-4, rtol=0)
    assert residual < 1e-3
    _, residual = least_squares_fold(gram, cross, lowrank_inner(new_B, new_A, new_B, new_A) * 4)
    assert residual > 0.5


def test_sd_lora_old_directions_stay_fixed_and_unit_norm_while_magnitudes_train(tiny, built_methods):
    seen = {}

    def on_task_end(report):
        method = built_methods[0]
        seen[report.task] = {
            "pairs": [[(p.A.detach().clone(), p.B.detach().clone()) for p in s.module.adapters[s.target]]
                      for s in method.slices],
            "alphas": [float(a.detach()) for a in method.magnitudes],
            "trained": {id(p) for g in method.param_groups() for p in g["params"]},
        }

    result = janus.run_experiment(tiny(**PARAMS), on_task_end=on_task_end)
    method = built_methods[0]
    assert all(math.isfinite(v) for v in result.metrics.values())
    assert {s.target for s in method.slices} == {"q", "v"}
    assert all(abs(a - 0.8) > 1e-5 for a in seen[1]["alphas"]) and len(seen[1]["alphas"]) == 2
    assert {id(a) for a in method.magnitudes} <= seen[1]["trained"]
    for s, before, after in zip(method.slices, seen[0]["pairs"], seen[1]["pairs"]):
        (A0, B0), = before
        (A0_now, B0_now), _ = after
        torch.testing.assert_close(A0_now, A0 / A0.norm())          # normalised once, then frozen
        torch.testing.assert_close(B0_now, B0 / B0.norm())
        assert abs(float(A0_now.norm()) - 1) < 1e-5 and abs(float(B0_now.norm()) - 1) < 1e-5
        old = s.module.adapters[s.target][0]
        assert not old.A.requires_grad and not old.B.requires_grad


def test_sd_lora_rank_reduction_and_direction_absorption(tiny, built_methods):
    overrides = {"method.rr": True, "method.rr_milestones": "1", "method.kd": True,
                 "method.reset_magnitudes": False, "method.kd_tau": 1.0}  # τ = 1 always absorbs
    result = janus.run_experiment(tiny(**PARAMS, **overrides))
    method = built_methods[0]
    assert all(math.isfinite(v) for v in result.metrics.values())
    assert result.diagnostics[1]["rank"] == 3                          # round(0.8 · 4)
    assert result.diagnostics[1]["kd_absorbed"] is True
    assert len(method.magnitudes) == 1 and all(len(p) == 1 for m in method.lora_modules.values()
                                                for p in m.adapters.values())


def test_sd_lora_refuses_kd_with_magnitude_reset(tiny):
    with pytest.raises(UserError, match="reset_magnitudes"):
        janus.run_experiment(tiny(**PARAMS, **{"method.kd": True}))
