"""LoRA-GPM (docs/baselines.md §7) and the update-rewriting machinery it shares (janus/projection.py)."""

import importlib
import math

import pytest
import torch
from torch import nn

import janus
from janus.config import ExperimentConfig
from janus.lora import LoRAQKV, Site, adapted_slices
from janus.methods import METHODS, build_options
from janus.projection import GRSettings, Projector, UpdateRewriter
from janus.rectify import violation

PARAMS = {"method.name": "lora-gpm"}


def orthonormal(d, k, seed=0):
    return torch.linalg.qr(torch.randn(d, k, generator=torch.Generator().manual_seed(seed)))[0]


def toy_slices(seed=0):
    """One block's LoRA on K and V of an 8 -> 3×8 qkv, with B ≠ 0 so that GR has work to do."""
    torch.manual_seed(seed)
    module = LoRAQKV(nn.Linear(8, 24), ("k", "v"), rank=2, scale=1.0)
    slices = adapted_slices({Site(0): module})
    for s in slices:
        nn.init.normal_(s.pair.B)
    return module, slices


def adam_step(module, slices, rewriter, projectors):
    """One protocol-style step: backward -> before_step -> Adam -> after_step; returns the applied steps."""
    params = [p for s in slices for p in (s.pair.A, s.pair.B)]
    optimizer = torch.optim.Adam(params, lr=1e-2)
    before = [(s.pair.A.detach().clone(), s.pair.B.detach().clone()) for s in slices]
    module(torch.randn(5, 8)).square().sum().backward()
    rewriter.before_step(slices, projectors)
    optimizer.step()
    rewriter.after_step(slices, projectors)
    return [(s.pair.A.detach() - A0, s.pair.B.detach() - B0, A0, B0) for s, (A0, B0) in zip(slices, before)]


@pytest.mark.parametrize("mode", ["remove", "retain"])
def test_project_a_rewrites_the_adam_step_off_the_basis_and_leaves_b_free(mode):
    module, slices = toy_slices()
    basis = orthonormal(8, 3)
    forbidden = basis if mode == "remove" else torch.linalg.qr(basis, mode="complete")[0][:, 3:]
    projectors = {s.name: Projector(basis, mode) for s in slices}
    rewriter = UpdateRewriter("project_a", GRSettings(hook="update"))
    for dA, dB, _, _ in adam_step(module, slices, rewriter, projectors):
        assert (dA @ forbidden).norm() < 1e-6 * dA.norm()
        assert dA.norm() > 1e-4 and dB.norm() > 1e-4
    summary = rewriter.summary()
    assert math.isfinite(summary["violation_raw"]) and summary["violation_raw"] > 0


def test_strict_gr_removes_the_composite_violation_and_tangent_gr_lowers_it():
    basis = orthonormal(8, 3)
    results = {}
    for variant in ("strict", "tangent"):
        module, slices = toy_slices()
        projectors = {s.name: Projector(basis) for s in slices}
        rewriter = UpdateRewriter("rectify", GRSettings(variant=variant))
        steps = adam_step(module, slices, rewriter, projectors)
        results[variant] = [float(violation(A0, B0, dA, dB, basis)) for dA, dB, A0, B0 in steps]
        summary = rewriter.summary()
        assert summary["violation_applied"] < summary["violation_raw"]
    assert max(results["strict"]) < 1e-5
    assert max(results["tangent"]) > 1e-5  # GR-T reduces, it does not remove (docs/method.md §5.5)


def test_grad_hook_projects_the_gradient_before_the_optimizer():
    module, slices = toy_slices()
    basis = orthonormal(8, 3)
    projectors = {s.name: Projector(basis) for s in slices}
    module(torch.randn(5, 8)).square().sum().backward()
    UpdateRewriter("project_a", GRSettings(hook="grad")).before_step(slices, projectors)
    for s in slices:
        assert (s.pair.A.grad @ basis).norm() < 1e-6 * s.pair.A.grad.norm()


RETAIN = {"method.statistic": "representation", "method.criterion": "eig", "method.threshold": 0.999}


@pytest.mark.parametrize("overrides", [{}, RETAIN], ids=["remove", "dualgpm-retain"])
def test_lora_gpm_applied_a_update_has_no_component_in_the_old_basis(tiny, built_methods, overrides):
    seen = {}

    def on_task_end(report):
        method = built_methods[0]
        seen[report.task] = {
            "A": [s.pair.A.detach().clone() for s in method.slices],
            "B": [s.pair.B.detach().clone() for s in method.slices],
            "protected": [method.bases.bases[s.block].protected_basis() for s in method.slices],
        }

    result = janus.run_experiment(tiny(**PARAMS, **overrides), on_task_end=on_task_end)
    assert all(math.isfinite(v) for v in result.metrics.values())
    if overrides:
        assert result.diagnostics[0]["retain_blocks"] > 0
    before, after = seen[0], seen[1]
    for A0, A1, B0, B1, V in zip(before["A"], after["A"], before["B"], after["B"], before["protected"]):
        dA = A1 - A0
        assert dA.norm() > 1e-4 and (B1 - B0).norm() > 1e-4          # both factors trained
        assert (dA @ V).norm() < 1e-4 * dA.norm()        # ||ΔA V|| ~ 0 (float32 round-off of A0 + ΔA*)
    assert result.diagnostics[1]["violation_raw"] > 0


def test_lora_gpm_with_gr_lowers_the_composite_violation(tiny):
    result = janus.run_experiment(tiny(**PARAMS, **{"method.gr": True}))
    second = result.diagnostics[1]
    assert all(math.isfinite(v) for v in result.metrics.values())
    assert second["violation_applied"] < 0.95 * second["violation_raw"]


@pytest.mark.parametrize("space", ["lora_gpm", "inflora", "sd_lora", "lora_drs"])
def test_search_spaces_of_the_lora_baselines_use_valid_keys(tiny, space):
    module = importlib.import_module(f"search_spaces.{space}")
    assert module.METHOD in METHODS and "python -m study.run" in module.__doc__
    for _ in range(3):
        sample = {key: domain.sample() for key, domain in module.SPACE.items()}
        config = ExperimentConfig.from_dict(tiny(**{"method.name": module.METHOD, **sample}))
        build_options(config.method.name, config.method.params)
