"""The sequential protocol: evaluation, determinism, callbacks, resume, failures."""

import math

import numpy as np
import pytest
import torch

from janus import run_experiment
from janus.errors import UserError
from janus.methods import METHODS, Method, register_method
from janus.protocol import evaluate
from janus.testing import tiny_config
from janus.training import NonFiniteLoss, schedule_factor


def test_same_seed_gives_the_same_matrix_and_metrics():
    first = run_experiment(tiny_config())
    second = run_experiment(tiny_config())
    np.testing.assert_array_equal(first.acc_matrix, second.acc_matrix)
    assert first.metrics == second.metrics
    assert first.acc_matrix.shape == (2, 2) and math.isnan(first.acc_matrix[0, 1])
    assert first.n_test == [16, 16] and len(first.task_wall_s) == 2


def test_callback_sees_every_task_and_resume_continues_identically():
    reports, checkpoints = [], []

    def on_task_end(report):
        reports.append((report.task, dict(report.metrics)))
        checkpoints.append(report.checkpoint())

    full = run_experiment(tiny_config(**{"optim.lr": 5e-3}), on_task_end=on_task_end)
    assert [task for task, _ in reports] == [0, 1]
    assert reports[-1][1]["acc"] == full.metrics["acc"]
    resumed = run_experiment(tiny_config(**{"optim.lr": 5e-3}), resume=checkpoints[0])
    np.testing.assert_array_equal(resumed.acc_matrix, full.acc_matrix)


class _Oracle(Method):
    """Predicts the true label: checks that evaluation is class-incremental over all seen classes."""

    def predict(self, x):
        labels = x[:, 0, 0, 0].long()
        return torch.nn.functional.one_hot(labels, self.heads.num_classes).float()


def test_evaluate_uses_argmax_over_all_seen_classes():
    images = torch.zeros(6, 3, 2, 2)
    images[:, 0, 0, 0] = torch.tensor([0, 1, 2, 3, 3, 2])
    labels = torch.tensor([0, 1, 2, 3, 2, 2])                         # one wrong "oracle" answer
    dataset = torch.utils.data.TensorDataset(images, labels)
    method = _Oracle(torch.nn.Identity(), None, type("C", (), {"feature_dim": 4})())
    method.heads.add_head(2)
    method.heads.add_head(2)
    make = lambda data: torch.utils.data.DataLoader(data, batch_size=4)  # noqa: E731
    accuracies, sizes = evaluate(method, [dataset, dataset], make, torch.device("cpu"), "fp32")
    assert sizes == [6, 6] and accuracies[0] == pytest.approx(100 * 5 / 6)


def test_inflora_cosine_schedule_matches_the_protocol_code():
    assert schedule_factor("inflora_cosine", 0, 50) == 1.0
    assert schedule_factor("inflora_cosine", 49, 50) == pytest.approx(math.cos(99 * math.pi / 200))
    assert schedule_factor("cosine", 5, 10) == pytest.approx(0.5)
    with pytest.raises(UserError):
        schedule_factor("linear", 0, 10)


def test_non_finite_loss_fails_the_run_with_its_own_error():
    if "test-nan" not in METHODS:
        @register_method("test-nan")
        class _Nan(Method):
            def loss(self, out, y, task):
                return out.logits.sum() * float("nan")

    with pytest.raises(NonFiniteLoss, match="non-finite loss on task 0"):
        run_experiment(tiny_config(**{"method.name": "test-nan"}))


def test_user_errors_name_the_fix(tmp_path):
    with pytest.raises(UserError, match="unknown method 'nope'"):
        run_experiment(tiny_config(**{"method.name": "nope"}))
    with pytest.raises(UserError, match="--data-root"):
        run_experiment(tiny_config(**{"data.dataset": "cifar100", "data.root": str(tmp_path)}))
    with pytest.raises(UserError, match="unknown method option|unknown config key 'method.bogus'"):
        run_experiment(tiny_config(**{"method.bogus": 1}))


@pytest.mark.parametrize("method", ["janus", "inflora"])
def test_merged_lora_evaluation_gives_the_same_matrix(method):
    """eval.merge_lora=on (the CUDA default) folds LoRA into the weights while evaluating; the accuracies
    match the unmerged evaluation, and training after the merge is unaffected (weights restored)."""
    runs = {m: run_experiment(tiny_config(**{"method.name": method, "eval.merge_lora": m})) for m in ("off", "on")}
    np.testing.assert_allclose(runs["on"].acc_matrix, runs["off"].acc_matrix, atol=100 / 16 + 1e-9)
    assert runs["on"].metrics["acc"] == pytest.approx(runs["off"].metrics["acc"], abs=100 / 16)
    with pytest.raises(UserError, match="merge_lora"):
        run_experiment(tiny_config(**{"eval.merge_lora": "yes"}))
