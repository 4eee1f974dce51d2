"""The end-of-study report logged to the study's MLflow parent run, and results rebuilt from MLflow runs.

One SQLite tracking store (loopback-free, in a temporary folder) serves every test of this module.
"""

import json
import math

import polars as pl
import pytest
from results_rows import make_row, results_frame

from analysis.load import load_study
from analysis.report import study_report
from analysis.tables import build_tables

pytestmark = pytest.mark.slow  # an MLflow SQLite store takes seconds to create


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("studies", artifact_location=str(root / "artifacts"))
    return client, uri, experiment


def new_study(folder, client, uri, experiment, name):
    parent = client.create_run(experiment, run_name=name).info.run_id
    folder.mkdir(parents=True)
    (folder / "study.json").write_text(json.dumps({
        "name": name, "tracking_uri": uri, "experiment_id": experiment, "parent_run_id": parent,
        "created": "2026-01-01T00:00:00Z", "argv": ["--method", "janus,inflora"]}))
    return parent


def artifact_paths(client, run_id, folder):
    return {item.path for item in client.list_artifacts(run_id, folder)}


def test_study_report_returns_the_main_table_and_logs_tables_and_figures(tmp_path, tracking):
    client, uri, experiment = tracking
    folder = tmp_path / "report-study"
    parent = new_study(folder, client, uri, experiment, "report-study")
    rows = [make_row(m, "imagenet-r", 10, seed=s, acc=a + s) for m, a in [("janus", 75), ("inflora", 73)] for s in range(2)]
    results_frame(rows).write_parquet(folder / "results.parquet")
    text = study_report(folder)
    assert text.startswith("**Main results (ACC / MAA / BWT, %)**")
    assert "| Janus-LoRA |      **75.50** ± 0.71 |" in text
    tables = artifact_paths(client, parent, "tables")
    assert {"tables/main.md", "tables/main.tex", "tables/main.csv", "tables/main.html",
            "tables/main_vs_paper.md"} <= tables
    assert "figures/curves-imagenet-r-t10-vit.png" in artifact_paths(client, parent, "figures")
    assert (folder / "report" / "tables" / "main.md").read_text() == text


def log_trial(client, experiment, parent, row):
    """As study/tracking.py logs a trial: per-task metrics at step = task, final_<name> at the end."""
    run = client.create_run(experiment, tags={"mlflow.parentRunId": parent, "ray_trial_id": row["trial_id"],
                                              "stage": row["stage"]})
    run_id = run.info.run_id
    for key, value in row.items():
        if key.startswith("cfg."):
            client.log_param(run_id, key.removeprefix("cfg."), value)
    for metric in ("acc", "maa", "bwt", "val_acc_all"):
        if row[metric] is not None:
            for step, offset in enumerate((9.0, -3.0)):  # a per-task series that differs from the final value
                client.log_metric(run_id, metric, row[metric] + offset, step=step)
            client.log_metric(run_id, f"final_{metric}", row[metric], step=0)
    if row["acc_matrix"] is not None:
        matrix = [[None if math.isnan(v) else v for v in r] for r in row["acc_matrix"]]
        client.log_dict(run_id, {"acc_matrix": matrix, "n_test": row["n_test"],
                                 "diagnostics": json.loads(row["diagnostics_json"])}, "acc_matrix.json")
    client.set_terminated(run_id, "FINISHED" if row["status"] == "completed" else "FAILED")


def test_results_are_rebuilt_from_mlflow_runs_when_the_parquet_is_missing(tmp_path, tracking):
    client, uri, experiment = tracking
    folder = tmp_path / "mlflow-study"
    parent = new_study(folder, client, uri, experiment, "mlflow-study")
    rows = [make_row("janus", "cifar100", 10, seed=s, acc=80.0 + s, cfg={"cfg.method.oe": True}) for s in range(3)]
    rows.append(make_row("janus", "cifar100", 10, seed=3, status="failed", cfg={"cfg.method.oe": True}))
    for row in rows:
        log_trial(client, experiment, parent, row)
    loaded = load_study(folder).sort("seed")
    assert loaded["status"].to_list() == ["completed"] * 3 + ["failed"]
    assert loaded["cfg.method.oe"].to_list() == [True] * 4 and loaded["cfg.optim.lr"].to_list() == [5e-4] * 4
    assert loaded["acc_matrix"][0].to_list()[-1] == rows[0]["acc_matrix"][-1]
    expected = build_tables(results_frame(rows))[0].cells.select("row", "sub", "mean", "std", "n", "n_excluded")
    got = build_tables(loaded)[0].cells.select("row", "sub", "mean", "std", "n", "n_excluded")
    assert got.sort("sub").equals(expected.sort("sub"))
    assert pl.Series(loaded["study"]).unique().to_list() == ["mlflow-study"]
