"""results.parquet: the schema the analysis reads, upsert by trial_id, atomic replace, summary table."""

import json
import math

import polars as pl

from janus.config import ExperimentConfig
from study import results, summary
from study.cells import resolve
from study.recorder import row_for

METRICS = {name: 50.0 for name in results.METRICS}


def _metrics(acc=50.0, tasks=2):
    matrix = [[acc if j <= t else math.nan for j in range(tasks)] for t in range(tasks)]
    return {**METRICS, "acc": acc, "acc_matrix": matrix, "n_test": [8] * tasks, "task_wall_s": [0.5] * tasks,
            "wall_s": 1.5, "peak_memory_mb": 100.0, "diagnostics_json": "[{}, {}]", "git_sha": "abc",
            "device": "cpu (2 cores)", "tasks_done": tasks, "num_tasks": tasks}


def _row(trial_id, method="seq-lora", seed=0, acc=50.0, error=None, stage="grid"):
    overrides = {"method.name": method, "data.dataset": "synthetic", "data.tasks": 2, "seed": seed}
    row, config = row_for("s", stage, trial_id, {"cell": overrides}, _metrics(acc), error)
    return row, config


def test_row_follows_the_schema(tmp_path):
    row, config = _row("t1")
    frame = results.upsert(tmp_path / "results.parquet", [row], results.cfg_dtypes(config))
    fixed = list(results.FIXED_SCHEMA) + list(results.TAIL_SCHEMA)
    assert [c for c in frame.columns if not c.startswith("cfg.")] == fixed
    assert {f"cfg.{k}" for k in config.to_flat()} <= set(frame.columns)
    assert frame.schema["acc_matrix"] == pl.List(pl.List(pl.Float64))
    assert frame.schema["cfg.backbone.weights"] == pl.String  # typed even when null in every row
    assert frame["cfg.lora.targets"][0] == '["k", "v"]'
    assert ExperimentConfig.from_dict(json.loads(frame["config_json"][0])) == config
    assert math.isnan(frame["acc_matrix"][0][0][1]) and frame["status"][0] == "completed"


def test_upsert_replaces_by_trial_id_and_keeps_others(tmp_path):
    path = tmp_path / "results.parquet"
    first, config = _row("t1", error="NonFiniteLoss: non-finite loss")
    results.upsert(path, [first], results.cfg_dtypes(config))
    janus_row, janus_config = _row("t2", method="finetune", seed=1)
    results.upsert(path, [janus_row], results.cfg_dtypes(janus_config))
    retried, _ = _row("t1", acc=70.0)
    frame = results.upsert(path, [retried], results.cfg_dtypes(config))
    assert frame.height == 2 and sorted(frame["trial_id"]) == ["t1", "t2"]
    assert frame.filter(pl.col("trial_id") == "t1")["acc"][0] == 70.0
    assert not list(tmp_path.glob(".*.tmp")), "the temporary file is renamed into place"
    assert results.read(path).height == 2


def test_failed_and_stopped_rows(tmp_path):
    failed, _ = _row("t1", error="ValueError: bad batch")
    assert failed["status"] == "failed" and failed["acc"] is None and failed["acc_matrix"] is None
    overrides = {"method.name": "seq-lora", "data.dataset": "synthetic", "data.tasks": 4}
    stopped, _ = row_for("s", "search", "t3", overrides, _metrics(tasks=2), None)
    assert stopped["status"] == "failed" and "after 2 of 4 tasks" in stopped["error"]


def test_resolve_fills_method_options():
    config = resolve({"method.name": "seq-lora", "optim.epochs": "3"})
    assert config.optim.epochs == 3 and isinstance(config, ExperimentConfig)


def test_summary_table_mean_std_over_seeds(tmp_path):
    path = tmp_path / "results.parquet"
    for i, acc in enumerate((60.0, 70.0)):
        row, config = _row(f"a{i}", seed=i, acc=acc)
        results.upsert(path, [row], results.cfg_dtypes(config))
    row, config = _row("f0", method="finetune", error="boom")
    results.upsert(path, [row], results.cfg_dtypes(config))
    table = summary.mean_std_table(results.read(path))
    lora = table.filter(pl.col("method") == "Fine-Tuning").row(0, named=True)  # analysis.names: seq-lora
    assert lora["n"] == 2 and lora["failed"] == 0 and lora["ACC"] == "65.00 ± 7.07"
    assert table.filter(pl.col("method") == "Full Fine-Tuning").row(0, named=True)["failed"] == 1
    assert table["method"].to_list() == ["Full Fine-Tuning", "Fine-Tuning"]  # the paper tables' row order
    text = summary.render(results.read(path))
    assert "| Fine-Tuning" in text and "65.00 ± 7.07" in text
    table = summary.parent_table(results.read(path))
    assert table["method"] == ["Full Fine-Tuning", "Fine-Tuning"] and table["ACC"][1] == "65.00 ± 7.07"
