"""Whole studies on a local Ray: grid, Optuna search + replicate, a failing trial, interrupt and resume."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from study_helpers import study_runs, tiny_study

from study.run import main
from study.settings import STUDY_JSON_KEYS

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]


def _steps(client, run, metric="acc"):
    return sorted(m.step for m in client.get_metric_history(run.info.run_id, metric))


def test_grid_study_records_every_trial(local_ray, tmp_path):
    assert main(tiny_study(tmp_path, "grid", "--seeds", "2")) == 0
    study_dir = tmp_path / "grid"
    assert set(json.loads((study_dir / "study.json").read_text())) == set(STUDY_JSON_KEYS)
    rows = pl.read_parquet(study_dir / "results.parquet")
    assert rows.height == 2 and set(rows["status"]) == {"completed"} and sorted(rows["seed"]) == [0, 1]
    assert set(rows["stage"]) == {"grid"} and rows["acc_matrix"][0].len() == 2 and rows["val_acc_all"].is_not_null().all()
    client, parent, children = study_runs(study_dir)
    assert len(children) == 2 and parent.info.status == "FINISHED"
    for child in children:
        assert child.info.status == "FINISHED" and _steps(client, child) == [0, 1]
        assert child.data.params["method.name"] == "seq-lora" and child.data.tags["ray_trial_id"] in set(rows["trial_id"])
        assert {"final_acc", "final_val_acc_all", "acc_task_1", "acc_task_2", "acc_new", "acc_old"} <= \
            set(child.data.metrics)
        assert [m.step for m in client.get_metric_history(child.info.run_id, "acc_task_1")] == [0, 1]
        assert {"system/cpu_time_s", "system/max_rss_mb", "task_time_s", "wall_s"} <= set(child.data.metrics)
        assert not any(name.startswith("acc_task_3") for name in child.data.metrics)   # 2 tasks: j = 1, 2
        assert {a.path for a in client.list_artifacts(child.info.run_id)} >= {"acc_matrix.parquet", "config.json"}
    assert not parent.data.metrics   # the summary is a table artifact, not one chart per number
    assert "summary_table.json" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    experiment = client.get_experiment(parent.info.experiment_id)
    assert "seq-lora" in experiment.tags["mlflow.note.content"] and experiment.tags["methods"] == "seq-lora"


def test_optuna_search_then_replicate_the_best(local_ray, tmp_path):
    argv = tiny_study(tmp_path, "search", "--search", "optuna", "--num-samples", "3", "--seeds", "2",
                      "--replicate-top", "1", "--max-concurrent", "2")
    assert main(argv) == 0
    rows = pl.read_parquet(tmp_path / "search" / "results.parquet")
    searched = rows.filter(pl.col("stage") == "search")
    assert searched.height == 3 and searched["cfg.optim.lr"].n_unique() == 3 and set(searched["seed"]) == {0}
    best = searched.sort(["val_acc_all", "trial_id"], descending=[True, False]).row(0, named=True)
    replicated = rows.filter(pl.col("stage") == "replicate")
    assert sorted(replicated["seed"]) == [0, 1]
    assert set(replicated["cfg.optim.lr"]) == {best["cfg.optim.lr"]}
    assert set(replicated["cfg.lora.rank"]) == {best["cfg.lora.rank"]}
    assert len(study_runs(tmp_path / "search")[2]) == 5


def test_a_failing_trial_is_recorded_and_the_study_goes_on(local_ray, tmp_path):
    argv = tiny_study(tmp_path, "fail", "--seeds", "1", "--set", "optim.lr=1e30", "--set", "optim.head_lr=1e30")
    assert main(argv) == 1   # every trial failed: the study says so with its exit status
    rows = pl.read_parquet(tmp_path / "fail" / "results.parquet")
    assert rows.height == 1 and rows["status"][0] == "failed" and "NonFiniteLoss" in rows["error"][0]
    assert rows["acc"].is_null().all()
    _, _, children = study_runs(tmp_path / "fail")
    assert [c.info.status for c in children] == ["FAILED"] and "NonFiniteLoss" in children[0].data.tags["error"]


def test_ctrl_c_before_the_first_report_leaves_the_trial_unfinished(local_ray, tmp_path):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while the only trial runs its
    first task: exit 130, no results row (not a false "failed"), and --resume completes it."""
    import os

    argv = tiny_study(tmp_path, "early", "--seeds", "1", "--set", "optim.epochs=40")
    driver = subprocess.Popen([sys.executable, "-m", "study.run", *argv], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and driver.poll() is None and not list((tmp_path / "early").glob("ray/grid/seq-lora*")):
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(driver.pid, signal.SIGINT)
    output, _ = driver.communicate(timeout=120)
    assert driver.returncode == 130 and "--resume" in output, output
    results_file = tmp_path / "early" / "results.parquet"
    assert not results_file.exists() or pl.read_parquet(results_file).height == 0
    assert main(["--studies-dir", str(tmp_path), "--study", "early", "--resume"]) == 0
    rows = pl.read_parquet(results_file)
    assert rows.height == 1 and rows["status"].to_list() == ["completed"]


def test_gpus_the_cluster_lacks_fail_at_once(local_ray, tmp_path, capsys):
    assert main(tiny_study(tmp_path, "gpu", "--gpus-per-trial", "0.5")) == 2
    assert "no node of the Ray cluster has that many" in capsys.readouterr().err
    assert not (tmp_path / "gpu").exists()


def _wait_for_first_checkpoint(ray_dir: Path, process, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if list(ray_dir.glob("grid/*/checkpoint_000000")):
            return
        time.sleep(0.2)
    raise AssertionError("no trial reached its first task boundary")


def test_interrupted_study_resumes_without_duplicates(local_ray, tmp_path):
    """Ctrl-C after the first task boundary, then --resume: each trial has one row and one MLflow run,
    and every task is logged once."""
    import ray

    argv = tiny_study(tmp_path, "resume", "--seeds", "2", "--max-concurrent", "1", "--set", "optim.epochs=2",
                      "--set", "data.synthetic_classes=6", "--address", ray.get_runtime_context().gcs_address,
                      tasks=3)
    driver = subprocess.Popen([sys.executable, "-m", "study.run", *argv], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    _wait_for_first_checkpoint(tmp_path / "resume" / "ray", driver)
    driver.send_signal(signal.SIGINT)
    output, _ = driver.communicate(timeout=120)
    assert driver.returncode == 130, output
    assert "--resume" in output
    before = pl.read_parquet(tmp_path / "resume" / "results.parquet") if (tmp_path / "resume" / "results.parquet").exists() else None
    assert before is None or before.height < 2
    client, _, children = study_runs(tmp_path / "resume")
    first_runs = {c.data.tags["ray_trial_id"]: c.info.run_id for c in children}

    assert main(["--studies-dir", str(tmp_path), "--study", "resume", "--resume"]) == 0
    rows = pl.read_parquet(tmp_path / "resume" / "results.parquet")
    assert rows.height == 2 and rows["trial_id"].n_unique() == 2 and set(rows["status"]) == {"completed"}
    client, parent, children = study_runs(tmp_path / "resume")
    assert len(children) == 2 and parent.info.status == "FINISHED"
    for child in children:
        assert _steps(client, child) == [0, 1, 2] and child.info.status == "FINISHED"
        trial_id = child.data.tags["ray_trial_id"]
        assert first_runs.get(trial_id, child.info.run_id) == child.info.run_id  # continued, not duplicated

    assert main(["--studies-dir", str(tmp_path), "--study", "resume", "--resume"]) == 0  # nothing left to do
    assert pl.read_parquet(tmp_path / "resume" / "results.parquet").height == 2
    assert len(study_runs(tmp_path / "resume")[2]) == 2


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_fractional_gpu_trials_share_one_device(local_ray, tmp_path):
    assert main(tiny_study(tmp_path, "gpu-share", "--seeds", "2", "--gpus-per-trial", "0.5")) == 0
    rows = pl.read_parquet(tmp_path / "gpu-share" / "results.parquet")
    assert set(rows["status"]) == {"completed"} and not any(d.startswith("cpu") for d in rows["device"])
    assert set(rows["cfg.optim.device"]) == {"auto"}
