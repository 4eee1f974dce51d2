"""InfLoRA (docs/baselines.md §8): designed, frozen A_t outside the old subspace; only B_t and the head train."""

import math

import numpy as np
import pytest
import torch

import janus
from janus.methods.inflora import A_SCALE, design_down_projection
from janus.projection import Projector

PARAMS = {"method.name": "inflora"}


def orthonormal(d, k, seed=0):
    return torch.linalg.qr(torch.randn(d, k, generator=torch.Generator().manual_seed(seed)))[0]


def covariance(d, n=200, seed=0):
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) * torch.linspace(3, 0.1, d)
    return x.T @ x / n


@pytest.mark.parametrize("mode", ["remove", "retain"])
def test_designed_rows_avoid_the_protected_subspace_and_are_scaled_singular_vectors(mode):
    C, basis = covariance(12), orthonormal(12, 4)
    protected = basis if mode == "remove" else torch.linalg.qr(basis, mode="complete")[0][:, 4:]
    A = design_down_projection(C, Projector(basis, mode), rank=3)
    assert (A @ protected).norm() < 1e-5
    torch.testing.assert_close(A @ A.T, torch.eye(3) * A_SCALE**2, atol=1e-5, rtol=0)
    # the top left singular vectors of Π C, so A spans the best rank-3 subspace of the allowed part of C
    allowed = torch.eye(12) - protected @ protected.T
    top = torch.linalg.svd(allowed @ C)[0][:, :3]
    torch.testing.assert_close(A.T @ A / A_SCALE**2, top @ top.T, atol=1e-4, rtol=0)


def test_design_stays_in_the_allowed_subspace_when_it_is_smaller_than_the_rank():
    C, basis = covariance(10), orthonormal(10, 2)          # retain mode: only 2 allowed directions, rank 4
    A = design_down_projection(C, Projector(basis, "retain"), rank=4)
    complement = torch.linalg.qr(basis, mode="complete")[0][:, 2:]
    assert (A @ complement).norm() < 1e-5


def snapshot(method):
    return {
        "pairs": [[(p.A.detach().clone(), p.B.detach().clone()) for p in s.module.adapters[s.target]]
                  for s in method.slices],
        "protected": [method.bases.bases[s.block].protected_basis().clone() for s in method.slices],
        "modes": [method.bases.bases[s.block].mode for s in method.slices],
        "trained": {id(p) for g in method.param_groups() for p in g["params"]},
        "A_params": {id(s.pair.A) for s in method.slices},
    }


RETAIN = {"method.criterion": "eig", "method.threshold": 0.999}


@pytest.mark.parametrize("overrides", [{}, RETAIN], ids=["remove", "dualgpm-retain"])
def test_inflora_new_branch_is_orthogonal_to_the_old_basis_and_only_b_trains(tiny, built_methods, overrides):
    seen = {}
    config = tiny(**PARAMS, **overrides)   # lora.structure stays "shared": InfLoRA adds branches anyway

    def on_task_end(report):
        seen[report.task] = snapshot(built_methods[0])

    result = janus.run_experiment(config, on_task_end=on_task_end)
    assert all(math.isfinite(v) for v in result.metrics.values())
    assert ("retain" in seen[0]["modes"]) == bool(overrides)
    assert not seen[1]["trained"] & seen[1]["A_params"]                 # A_t is not optimised
    for old_pairs, new_pairs, V in zip(seen[0]["pairs"], seen[1]["pairs"], seen[0]["protected"]):
        (A0, B0), = old_pairs
        (A0_after, B0_after), (A1, B1) = new_pairs
        assert torch.equal(A0, A0_after) and torch.equal(B0, B0_after)  # old branch frozen
        assert B1.norm() > 0                                              # B_t trained from zero
        assert (A1 @ V).norm() < 1e-5 * A1.norm()                         # A_t rows ⟂ old subspace
        # A_t was never updated: its rows are still unit singular vectors times 1/√3
        torch.testing.assert_close(A1.norm(dim=1), torch.full((A1.shape[0],), A_SCALE), atol=1e-5, rtol=0)


def test_inflora_resumes_from_a_task_checkpoint(tiny):
    checkpoints = []
    config = tiny(**PARAMS)
    full = janus.run_experiment(config, on_task_end=lambda r: checkpoints.append(r.checkpoint()))
    resumed = janus.run_experiment(config, resume=checkpoints[0])
    np.testing.assert_allclose(resumed.acc_matrix, full.acc_matrix)
    assert resumed.diagnostics[-1]["protected_dims"] == full.diagnostics[-1]["protected_dims"]
