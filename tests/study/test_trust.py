"""Trust boundaries and the truth of what a study reports: checkpoints that cannot run code, masked secrets,
interrupted trials left resumable, exit codes, values that cannot work."""

import os
import pickle
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
import torch

from janus import run_experiment
from janus.config import ExperimentConfig
from janus.errors import UserError
from janus.testing import tiny_config
from study.cli import parse_settings, resumed_uri
from study.driver import exit_code, unfinished
from study.recorder import stopped_by_scheduler_or_done
from study.tracking import mask_uri, mask_words
from study.trainable import read_checkpoint


class _Planted:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_a_planted_checkpoint_is_refused_without_running_its_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "trial.pt"
    with open(path, "wb") as f:
        pickle.dump({"protocol": _Planted(str(marker))}, f)
    with pytest.raises(UserError, match="not written by this harness"):
        read_checkpoint(path)
    assert not marker.exists()


def test_a_real_checkpoint_loads_weights_only_and_resumes_identically(tmp_path):
    checkpoints = []
    config = tiny_config(**{"method.name": "janus", "optim.lr": 5e-3, "eval.classifier": "nme"})
    full = run_experiment(config, on_task_end=lambda r: checkpoints.append(r.checkpoint()))
    torch.save({"protocol": checkpoints[0], "wall_s": 1.0}, tmp_path / "trial.pt")
    saved = read_checkpoint(tmp_path / "trial.pt")
    resumed = run_experiment(config, resume=saved["protocol"])
    np.testing.assert_array_equal(resumed.acc_matrix, full.acc_matrix)


@pytest.mark.parametrize("uri, masked", [
    ("postgresql://user:pw@db.example/mlflow", "postgresql://user:***@db.example/mlflow"),
    ("https://token@mlflow.example/", "https://***@mlflow.example/"),
    ("http://127.0.0.1:5000/?token=abc&x=1", "http://127.0.0.1:5000/?token=***&x=1"),
    ("sqlite:////tmp/studies/mlflow.db", "sqlite:////tmp/studies/mlflow.db"),
])
def test_uris_are_masked(uri, masked):
    assert mask_uri(uri) == masked
    assert mask_words(["--tracking-uri", uri]) == ["--tracking-uri", masked]


def test_a_masked_uri_needs_the_full_one_to_resume(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    saved = "postgresql://user:***@db/mlflow"
    with pytest.raises(UserError, match="--tracking-uri"):
        resumed_uri(saved, None)
    with pytest.raises(UserError):
        resumed_uri(saved, "postgresql://other:pw@db/mlflow")
    assert resumed_uri(saved, "postgresql://user:pw@db/mlflow") == "postgresql://user:pw@db/mlflow"
    assert resumed_uri("sqlite:////x.db", None) == "sqlite:////x.db"


def test_written_study_json_holds_no_secret(tmp_path):
    from study.settings import write_study_json

    uri = "postgresql://user:pw@db/mlflow"
    settings = parse_settings(["--studies-dir", str(tmp_path), "--study", "s", "--tracking-uri", uri])
    record = write_study_json(settings, "1", "abc")
    text = (tmp_path / "s" / "study.json").read_text()
    assert "pw" not in text and record["tracking_uri"] == "postgresql://user:***@db/mlflow"


def test_a_trial_that_completes_short_of_its_tasks_is_unfinished_unless_a_scheduler_stopped_it():
    config = {"cell": {"data.tasks": 5}}
    assert not stopped_by_scheduler_or_done({}, config, early_stopping=False)
    assert not stopped_by_scheduler_or_done({"tasks_done": 2}, config, early_stopping=False)
    assert not stopped_by_scheduler_or_done({"tasks_done": 0}, config, early_stopping=True)
    assert stopped_by_scheduler_or_done({"tasks_done": 3}, config, early_stopping=True)
    assert stopped_by_scheduler_or_done({"tasks_done": 5}, config, early_stopping=False)


def test_trials_without_a_report_count_as_unfinished(tmp_path):
    settings = parse_settings(["--studies-dir", str(tmp_path), "--study", "s", "--backbone", "test"])
    grid = [SimpleNamespace(metrics=None, error=None, config={}),                  # pending at Ctrl-C
            SimpleNamespace(metrics={"trial_id": "a"}, error=None, config={}),     # running, no report yet
            SimpleNamespace(metrics={"trial_id": "b", "tasks_done": 2, "num_tasks": 5}, error=None, config={})]
    plan = SimpleNamespace(stage="grid")
    assert unfinished(grid, plan, settings, tracking=None) == 3


def _frame(statuses):
    return pl.DataFrame({"status": statuses})


def test_exit_code_tells_the_truth(tmp_path, capsys):
    settings = parse_settings(["--studies-dir", str(tmp_path), "--backbone", "test"])
    assert exit_code(_frame(["completed", "completed"]), settings) == 0
    assert exit_code(_frame(["completed", "failed"]), settings) == 0
    assert "1 of 2 trials failed" in capsys.readouterr().err
    assert exit_code(_frame(["failed", "failed"]), settings) == 1
    assert "error: all 2 trials failed" in capsys.readouterr().err


@pytest.mark.parametrize("key, value, message", [
    ("optim.epochs", 0, "optim.epochs must be at least 1"),
    ("optim.batch_size", 0, "optim.batch_size must be at least 1"),
    ("lora.rank", 0, "lora.rank must be at least 1"),
    ("optim.lr", -1e-3, "optim.lr must be positive"),
])
def test_values_that_cannot_work_are_refused(key, value, message):
    with pytest.raises(UserError, match=message):
        ExperimentConfig.from_dict({key: value})


def test_an_optional_key_can_be_reset_and_retry_failed_needs_resume(tmp_path):
    assert ExperimentConfig.from_dict({"data.max_train_per_class": "None"}).data.max_train_per_class is None
    with pytest.raises(UserError, match="add --resume"):
        parse_settings(["--studies-dir", str(tmp_path), "--retry-failed"])


def test_two_starts_of_one_study_name_claim_the_folder_once(tmp_path):
    from study.driver import check_study_dir, claim_study_dir

    settings = parse_settings(["--studies-dir", str(tmp_path), "--study", "same", "--backbone", "test"])
    check_study_dir(settings)
    check_study_dir(settings)          # both starts pass the early check ...
    claim_study_dir(settings)
    with pytest.raises(UserError, match="being started by another process"):
        claim_study_dir(settings)      # ... and only one claims the folder
    with pytest.raises(UserError, match="already exists"):
        check_study_dir(settings)


def test_default_names_are_unique_within_a_second():
    from study.cli import default_name

    names = {default_name(("digits",), ("test",)) for _ in range(50)}
    assert len(names) > 45


def test_a_new_sqlite_store_is_created_under_a_lock_by_concurrent_starts(tmp_path):
    """Two processes opening studies on a new sqlite file at once: without the lock the second fails in
    MLflow's schema migration (seen: alembic "expected to match one row"); with it both open."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from study.tracking import open_study; "
            "open_study(sys.argv[1], sys.argv[2], Path(sys.argv[3]), {}, {}); print('opened')")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    procs = [subprocess.Popen([sys.executable, "-c", code, name, uri, str(tmp_path / name)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 and "opened" in out for p, (out, _) in zip(procs, outputs)), outputs


def test_per_task_accuracy_streams():
    from study.recorder import task_streams

    result = {"task": 1, "acc_matrix": [[90.0, float("nan")], [60.0, 80.0]], "n_test": [10, 30]}
    assert task_streams(result) == {"acc_task_1": 60.0, "acc_task_2": 80.0, "acc_new": 80.0, "acc_old": 60.0}
    assert task_streams({"task": 0, "acc_matrix": [[90.0, float("nan")]], "n_test": [10, 30]}) == \
        {"acc_task_1": 90.0, "acc_new": 90.0}
