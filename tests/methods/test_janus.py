"""Janus-LoRA as a method: GR on the actual update, OE bases, DML, ablation flags, checkpoints."""

import itertools

import numpy as np
import pytest
import torch

from janus import run_experiment
from janus.backbone import build_backbone
from janus.config import ExperimentConfig
from janus.methods import MethodContext, TaskInfo, build_method
from janus.rectify import rectify, violation
from janus.subspace import DualBasis
from janus.testing import tiny_config


def make_janus(**params):
    cfg = ExperimentConfig.from_dict(tiny_config(**{"method.name": "janus", **{f"method.{k}": v
                                                                                for k, v in params.items()}}))
    torch.manual_seed(0)
    backbone = build_backbone(cfg.backbone, img_size=32)
    context = MethodContext(lora=cfg.lora, num_tasks=2, classes_per_task=(2, 2), feature_dim=64)
    return build_method(cfg, backbone, context)


def task_info(index):
    return TaskInfo(index=index, num_tasks=2, offset=2 * index, num_classes=2, train_data=None,
                    train_eval_data=None, make_loader=None, epochs=1)


def give_bases_and_weights(method, k=5):
    torch.manual_seed(1)
    for site in method.lora_modules:
        method.bases.bases[site.block] = DualBasis(torch.linalg.qr(torch.randn(64, k))[0])
    for s in method.slices:
        torch.nn.init.normal_(s.pair.B, std=0.1)


def one_adam_step(method, task):
    method.before_task(task)
    optimizer = torch.optim.Adam([p for g in method.param_groups() for p in g["params"]], lr=1e-2)
    out = method(torch.rand(8, 3, 32, 32))
    loss = method.loss(out, torch.tensor([0, 1] * 4) + task.offset, task)
    optimizer.zero_grad()
    loss.backward()
    before = [(s.pair.A.detach().clone(), s.pair.B.detach().clone()) for s in method.slices]
    method.after_backward(task)
    optimizer.step()
    raw = [(s.pair.A.detach() - a, s.pair.B.detach() - b) for s, (a, b) in zip(method.slices, before)]
    return before, raw


def protected_step(**params):
    """A Janus model as on task 1 (bases, trained B) after one Adam step: (method, start pairs, raw steps)."""
    method = make_janus(**params)
    method.heads.add_head(2)
    give_bases_and_weights(method)
    before, raw = one_adam_step(method, task_info(1))
    method.after_step(task_info(1))
    return method, before, raw


@pytest.mark.parametrize("variant", ["tangent", "tangent_gauge", "strict"])
def test_gr_rectifies_the_actual_adam_update_of_every_pair(variant):
    method, before, raw = protected_step(gr_variant=variant, dml=False)
    for s, (a0, b0), (dA, dB) in zip(method.slices, before, raw):
        basis = method.bases.bases[s.block].basis
        expected = rectify(variant, a0, b0, dA, dB, basis, balance=method.options.gr.balance)  # per pair
        torch.testing.assert_close(s.pair.A.detach() - a0, expected[0], atol=1e-6, rtol=1e-4)
        torch.testing.assert_close(s.pair.B.detach() - b0, expected[1], atol=1e-6, rtol=1e-4)
        applied = violation(a0, b0, s.pair.A.detach() - a0, s.pair.B.detach() - b0, basis)
        assert applied < violation(a0, b0, dA, dB, basis)
        if variant == "strict":
            assert applied < 1e-4


def test_oe_without_gr_projects_only_the_a_update():
    method, before, raw = protected_step(gr=False, dml=False)
    for s, (a0, b0), (dA, dB) in zip(method.slices, before, raw):
        basis = method.bases.bases[s.block].basis
        assert (s.pair.A.detach() - a0) @ basis == pytest.approx(0, abs=1e-6)
        torch.testing.assert_close(s.pair.B.detach() - b0, dB)


def test_nothing_is_rectified_on_the_first_task():
    method = make_janus()
    one_adam_step(method, task_info(0))
    before = [(s.pair.A.detach().clone(), s.pair.B.detach().clone()) for s in method.slices]
    method.after_step(task_info(0))
    for s, (a, b) in zip(method.slices, before):
        assert torch.equal(s.pair.A.detach(), a) and torch.equal(s.pair.B.detach(), b)


def test_janus_grows_bases_keeps_prototypes_and_resumes_from_a_checkpoint():
    checkpoints = []
    cfg = tiny_config(**{"method.name": "janus", "optim.lr": 5e-3, "optim.head_lr": 5e-2})
    full = run_experiment(cfg, on_task_end=lambda report: checkpoints.append(report.checkpoint()))
    dims = [d["basis_dim"]["blocks.0"] for d in full.diagnostics]
    assert 0 < dims[0] <= dims[1] <= 64
    assert set(full.diagnostics[1]["interference"]) == {f"blocks.{b}.{t}" for b in range(6) for t in "kv"}
    assert 0 <= full.diagnostics[1]["danger"] <= 1
    extra = checkpoints[0]["method"]["extra"]
    assert extra["bank"]["prototypes"].shape == (2, 64) and extra["bases"][0]["basis"].shape[1] == dims[0]
    resumed = run_experiment(cfg, resume=checkpoints[0])
    assert resumed.acc_matrix[0, 0] == full.acc_matrix[0, 0]
    torch.testing.assert_close(torch.tensor(resumed.acc_matrix[1]), torch.tensor(full.acc_matrix[1]))


@pytest.mark.parametrize("oe,gr,dml", list(itertools.product([False, True], repeat=3)))
def test_every_ablation_row_runs(oe, gr, dml):
    result = run_experiment(tiny_config(**{"method.name": "janus", "method.oe": oe, "method.gr": gr,
                                           "method.dml": dml, "data.synthetic_train_per_class": 8}))
    assert all(0 <= v <= 100 for v in result.acc_matrix[1])
    protected = result.diagnostics[-1]["basis_dim"]["blocks.0"]
    assert protected > 0 if (oe or gr) else protected == 0
    assert (result.diagnostics[-1]["danger"] is not None) == (result.diagnostics[-1] is not None)


def test_invalid_choice_is_a_clear_error():
    from janus.errors import UserError

    with pytest.raises(UserError, match="unknown method.gr.variant 'exact'; valid: tangent"):
        make_janus(gr_variant="exact")


def test_oe_and_gr_forget_less_than_unprotected_lora_over_three_seeds():
    """OE+GR vs the same model with both off (ablation ①, = seq-lora), 3 seeds.

    Both predict by NME on prototypes (`classifier=nme`): with per-task heads on the random tiny backbone,
    new heads take every old sample in both runs (BWT -100 either way), which hides the feature protection;
    with prototypes, old classes survive exactly when their features do.
    """
    base = {"method.name": "janus", "method.dml": False, "method.classifier": "nme", "method.prototypes": "pass",
            "optim.epochs": 10, "optim.lr": 1e-2, "optim.head_lr": 1e-2, "optim.batch_size": 8,
            "data.synthetic_train_per_class": 24, "data.synthetic_test_per_class": 20}
    bwt, interference = {True: [], False: []}, {True: [], False: []}
    for seed in range(3):
        for on in (False, True):
            result = run_experiment(tiny_config(**{**base, "seed": seed, "method.oe": on, "method.gr": on}))
            bwt[on].append(result.metrics["bwt"])
            values = result.diagnostics[-1]["interference"].values()
            interference[on].append(sum(values) / len(values))
    assert all(p < u / 3 for p, u in zip(interference[True], interference[False]))
    assert sum(bwt[True]) / 3 > sum(bwt[False]) / 3 + 10
    assert all(p >= u for p, u in zip(bwt[True], bwt[False]))


def test_classes_missing_from_the_last_epoch_get_prototypes_from_a_pass():
    """One image per epoch: the last epoch misses a class of each task; NME still scores every class."""
    result = run_experiment(tiny_config(**{"method.name": "janus", "method.classifier": "nme",
                                           "optim.batch_size": 1, "optim.max_steps_per_epoch": 1}))
    assert result.acc_matrix.shape == (2, 2) and not np.isnan(result.acc_matrix[1]).any()


def test_float32_task_end_eigendecomposition_keeps_the_basis_dimensions():
    params = {"method.name": "janus", "method.dml": False, "data.synthetic_train_per_class": 8}
    runs = {p: run_experiment(tiny_config(**params, **{"method.oe_precision": p})) for p in ("float64", "float32")}
    dims = {p: [d["basis_dim"] for d in run.diagnostics] for p, run in runs.items()}
    assert dims["float32"] == dims["float64"] and dims["float64"][0]["blocks.0"] > 0
    with pytest.raises(Exception, match="oe_precision"):
        run_experiment(tiny_config(**params, **{"method.oe_precision": "float16"}))


@pytest.mark.parametrize("diagnostics", [True, False])
def test_past_moments_are_kept_only_for_the_diagnostics(diagnostics):
    checkpoints = []
    cfg = tiny_config(**{"method.name": "janus", "method.diagnostics": diagnostics,
                         "data.synthetic_train_per_class": 8})
    run_experiment(cfg, on_task_end=lambda report: checkpoints.append(report.checkpoint()))
    past = checkpoints[-1]["method"]["extra"]["past_moment"]
    assert len(past) == (6 if diagnostics else 0)
    assert all(type(name) is str and m.shape == (64, 64) for name, m in past.items())  # plain keys, not Sites
