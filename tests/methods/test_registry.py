"""Every registered method, the same checks: registered under its module, options valid with their defaults,
a display name, two tasks run, and a task-boundary checkpoint resumes to the identical accuracy matrix."""

import dataclasses
import math

import numpy as np
import pytest

from analysis.names import METHODS as DISPLAY_NAMES
from janus import run_experiment
from janus.config import ExperimentConfig
from janus.methods import METHOD_MODULES, METHODS, resolve_config
from janus.testing import tiny_config

# Options a method needs on the tiny test backbone (4,096-weight slices, 2 tasks of 2 classes).
TINY = {"bilora": {"method.n_frq": 512}}


def config(method: str) -> dict:
    return tiny_config(**{"method.name": method, "optim.lr": 5e-3, **TINY.get(method, {})})


def test_every_method_module_registers_one_method():
    modules = {cls.__module__.rsplit(".", 1)[-1] for cls in METHODS.values()}
    assert modules == set(METHOD_MODULES) and len(METHODS) == len(METHOD_MODULES)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_options_resolve_with_their_defaults_and_the_method_has_a_display_name(method):
    options = METHODS[method].Options()
    params = resolve_config(ExperimentConfig.from_dict({"method.name": method})).method.params
    assert params == dataclasses.asdict(options)
    assert method in DISPLAY_NAMES


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(METHODS))
def test_two_tasks_run_and_a_checkpoint_resumes_identically(method):
    checkpoints = []
    full = run_experiment(config(method), on_task_end=lambda report: checkpoints.append(report.checkpoint()))
    assert full.acc_matrix.shape == (2, 2) and math.isnan(full.acc_matrix[0, 1])
    seen = full.acc_matrix[np.tril_indices(2)]
    assert np.all((seen >= 0) & (seen <= 100)) and full.n_test == [16, 16]
    resumed = run_experiment(config(method), resume=checkpoints[0])
    np.testing.assert_array_equal(resumed.acc_matrix, full.acc_matrix)


def test_a_checkpoint_regrows_from_its_stored_shapes_and_an_old_one_is_a_clear_error(tmp_path):
    from janus.errors import UserError
    from janus.testing import build_tiny

    checkpoints = []
    run_experiment(config("sd-lora"), on_task_end=lambda report: checkpoints.append(report.checkpoint()))
    state = checkpoints[-1]["method"]
    assert state["structure"]["heads"] == [2, 2] and len(state["structure"]["pair_ranks"]) == 2
    _, _, fresh = build_tiny(config("sd-lora"))
    fresh.load_checkpoint(state)
    assert len(fresh.magnitudes) == 2 and fresh.heads.num_classes == 4
    _, _, older = build_tiny(config("sd-lora"))
    with pytest.raises(UserError, match="before checkpoints recorded their structure"):
        older.load_checkpoint({k: v for k, v in state.items() if k != "structure"})

