"""Rebuild a study's results rows from its MLflow runs when `results.parquet` is not at hand.

What is read (the layout `study/` logs; every part but the run itself is optional):
* the trial runs are the children of the study's parent run (tag `mlflow.parentRunId`);
* params: the flat config keys (`method.name`, `data.dataset`, `data.tasks`, `backbone.name`, `seed`,
  `optim.lr`, `method.oe`, ...), values parsed as JSON (`true`, `5e-4`) or Python literals (`True`, `None`);
  each becomes the column `cfg.<key>`;
* metrics: `final_<name>` for `acc`, `maa`, `bwt`, ... (`analysis.schema.METRIC_COLUMNS`), `wall_s`,
  `peak_memory_mb`, else the last value of `<name>` (the per-task series, logged at step = task);
* tags: `ray_trial_id` (or `trial_id`), `stage`, `git_sha`, `device`, `error` when set;
* status: FINISHED -> "completed", FAILED or KILLED -> "failed", anything else -> "unfinished";
* artifact `acc_matrix.json` (top level or one folder down): the T x T matrix (null above the diagonal),
  or an object with `acc_matrix`, `n_test`, `task_wall_s` and `diagnostics`; `diagnostics.json` (one dict
  per task) and `config.json` (the resolved config) beside it.
"""

from __future__ import annotations

import json
import math
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from analysis.schema import METRIC_COLUMNS, conform
from janus.errors import UserError

STATUS = {"FINISHED": "completed", "FAILED": "failed", "KILLED": "failed"}
CORE_PARAMS = {"method": "method.name", "dataset": "data.dataset", "tasks": "data.tasks",
               "backbone": "backbone.name", "seed": "seed"}
ARTIFACTS = ("acc_matrix.json", "diagnostics.json", "config.json")


def parse_param(text: str):
    """An MLflow param string back to a value: JSON first, then Python's True/False/None, else the string."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return {"True": True, "False": False, "None": None}.get(text, text)


def _child_runs(client, experiment_id: str, parent_run_id: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'",
                                  max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def _find_artifacts(client, run_id: str) -> dict[str, str]:
    """Artifact paths of the files in ARTIFACTS, at the top level or one folder down."""
    found: dict[str, str] = {}
    for item in client.list_artifacts(run_id):
        children = client.list_artifacts(run_id, item.path) if item.is_dir else [item]
        for child in children:
            name = Path(child.path).name
            if not child.is_dir and name in ARTIFACTS:
                found.setdefault(name, child.path)
    return found


def _read_json_artifacts(client, run_id: str) -> dict:
    found = _find_artifacts(client, run_id)
    with tempfile.TemporaryDirectory() as tmp:
        return {name: json.loads(Path(client.download_artifacts(run_id, path, tmp)).read_text())
                for name, path in found.items()}


def _matrix_fields(artifacts: dict) -> dict:
    matrix = artifacts.get("acc_matrix.json")
    fields = matrix if isinstance(matrix, dict) else {"acc_matrix": matrix}
    rows = fields.get("acc_matrix")
    diagnostics = fields.get("diagnostics", artifacts.get("diagnostics.json"))
    config = artifacts.get("config.json")
    return {
        "acc_matrix": None if rows is None else [[math.nan if v is None else float(v) for v in r] for r in rows],
        "n_test": fields.get("n_test"), "task_wall_s": fields.get("task_wall_s"),
        "diagnostics_json": None if diagnostics is None else json.dumps(diagnostics),
        "config_json": None if config is None else json.dumps(config),
    }


def run_row(client, run, study: str) -> dict:
    """One results row (the `results.parquet` schema) from one trial run."""
    params = {key: parse_param(value) for key, value in run.data.params.items()}
    tags, logged = run.data.tags, run.data.metrics
    metrics = {name: logged.get(f"final_{name}", logged.get(name))
               for name in (*METRIC_COLUMNS, "wall_s", "peak_memory_mb")}
    status = STATUS.get(run.info.status, "unfinished")
    finished = run.info.end_time and datetime.fromtimestamp(run.info.end_time / 1000, timezone.utc).isoformat()
    return {
        "study": study, "trial_id": tags.get("ray_trial_id") or tags.get("trial_id") or run.info.run_id,
        "status": status,
        "error": tags.get("error"), **{column: params.get(key) for column, key in CORE_PARAMS.items()},
        "stage": tags.get("stage"), **metrics,
        "git_sha": tags.get("git_sha"), "device": tags.get("device"), "finished_at": finished or None,
        **_matrix_fields(_read_json_artifacts(client, run.info.run_id)),
        **{f"cfg.{key}": value for key, value in params.items()},
    }


def load_mlflow(tracking_uri: str, parent_run_id: str, study: str = "") -> pl.DataFrame:
    """Every trial run under `parent_run_id` as one row of the results schema."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    try:
        parent = client.get_run(parent_run_id)
    except MlflowException as error:
        raise UserError(f"MLflow run {parent_run_id} not found at {tracking_uri}: {error.message}") from error
    runs = _child_runs(client, parent.info.experiment_id, parent_run_id)
    if not runs:
        raise UserError(f"MLflow parent run {parent_run_id} at {tracking_uri} has no trial runs")
    frame = pl.DataFrame([run_row(client, run, study) for run in runs], infer_schema_length=None, strict=False)
    return conform(frame, f"MLflow runs under {parent_run_id}")
