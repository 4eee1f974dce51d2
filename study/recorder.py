"""The driver-side Tune callback that records every trial: its MLflow child run and its results row.

It runs in the driver process, from the results the trials report (study/trainable.py), so there is one
writer for MLflow and for results.parquet, and the trials need no access to either:

* trial start: open the trial's run (a restored trial finds its own by the `ray_trial_id` tag);
* each result (one per task): metrics at step=task, each step once; the trial's device, git SHA and
  package versions as tags (the driver's git SHA and versions until the first result);
* trial complete: the results row; final metrics and artifacts (accuracy matrix as Parquet and JSON,
  resolved config, diagnostics), status FINISHED; a trial stopped early by the scheduler is KILLED; a trial
  that "completes" short of its last task where no scheduler stops trials (Ctrl-C, or before its first
  report) gets no row: it is unfinished, and `--resume` continues it;
* trial error: the row with the exception line of Tune's error.txt; status FAILED.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from ray import tune

from janus.config import ExperimentConfig
from janus.runtime import git_sha, package_versions
from study import results
from study.cells import resolve, trial_overrides
from study.tracking import StudyTracking, TrialRun

# What goes to MLflow at each step (not Tune's own pid, timestamp, time_this_iter_s, ...).
SYSTEM = "system/"  # the trial process's own resource use per task (study/trainable.py, system_metrics)
TASK_METRICS = (*results.METRICS, "tasks_done", "task_time_s", "wall_s", "peak_memory_mb")


class StudyRecorder(tune.Callback):
    def __init__(self, study: str, stage: str, results_path: Path, tracking: StudyTracking,
                 early_stopping: bool = False):
        self.study, self.stage, self.early_stopping = study, stage, early_stopping
        self.results_path, self.tracking = Path(results_path), tracking
        self.runs: dict[str, TrialRun] = {}
        self.configs: dict[str, ExperimentConfig] = {}   # each trial's config, resolved once

    def __getstate__(self):  # Tune pickles its callbacks with the experiment; open runs stay behind
        return {**self.__dict__, "runs": {}}

    def config(self, trial_id: str, tune_config: dict) -> ExperimentConfig:
        if trial_id not in self.configs:
            self.configs[trial_id] = resolve(trial_overrides(tune_config))
        return self.configs[trial_id]

    def on_trial_start(self, iteration, trials, trial, **info):
        self.run(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        run = self.run(trial)
        if not run.logged_steps:
            run.set_tags({"git_sha": result["git_sha"], "device": result["device"],
                          "node_id": result.get("node_id", "unknown"),
                          **{f"version.{k}": v for k, v in json.loads(result["versions_json"]).items()}})
        run.log_task(int(result["task"]), {**{k: result[k] for k in TASK_METRICS if k in result},
                                           **{k: v for k, v in result.items() if k.startswith(SYSTEM)},
                                           **task_streams(result)})

    def on_trial_complete(self, iteration, trials, trial, **info):
        if not stopped_by_scheduler_or_done(trial.last_result or {}, self.config(trial.trial_id, trial.config),
                                            self.early_stopping):
            return  # interrupted: no row, its MLflow run stays open for --resume
        row = self.record(trial.trial_id, trial.config, trial.last_result or {}, error=None)
        if row["status"] == "completed":
            self.run(trial).finish(final_metrics(row), artifacts(row, trial.last_result))
        else:
            self.run(trial).end("KILLED", row["error"])

    def on_trial_error(self, iteration, trials, trial, **info):
        row = self.record(trial.trial_id, trial.config, trial.last_result or {}, error_line(trial.error_file))
        self.run(trial).end("FAILED", row["error"])

    def run(self, trial) -> TrialRun:
        if trial.trial_id not in self.runs:
            config = self.config(trial.trial_id, trial.config)
            tags = {"janus.study": self.study, "stage": self.stage, "method": config.method.name,
                    "dataset": config.data.dataset, "backbone": config.backbone.name,
                    "tasks": str(config.data.tasks), "seed": str(config.seed), "git_sha": git_sha(),
                    **{f"version.{k}": v for k, v in package_versions().items()}}  # the trial's own follow
            self.runs[trial.trial_id] = TrialRun.open(self.tracking, trial.trial_id, str(trial), tags,
                                                      config.to_flat())
        return self.runs[trial.trial_id]

    def record(self, trial_id: str, tune_config: dict, last_result: dict, error: str | None) -> dict:
        row, config = row_for(self.study, self.stage, trial_id, self.config(trial_id, tune_config), last_result,
                              error)
        results.upsert(self.results_path, [row], results.cfg_dtypes(config))
        return row


def task_streams(result: dict) -> dict[str, float]:
    """Per-task accuracy after the current task t as metric streams: `acc_task_<j>` (j = 1..t+1, 1-based as
    the console prints tasks; the MLflow step stays the 0-based task index), `acc_new` (task t's own test
    accuracy) and `acc_old` (tasks before t, pooled by test size; absent on the first task)."""
    task, matrix, sizes = int(result.get("task", 0)), result.get("acc_matrix") or [], result.get("n_test") or []
    if len(matrix) <= task:
        return {}
    row = matrix[task][: task + 1]
    streams = {f"acc_task_{j + 1}": float(v) for j, v in enumerate(row)}
    streams["acc_new"] = float(row[task])
    if task and len(sizes) > task and sum(sizes[:task]):
        streams["acc_old"] = sum(a * n for a, n in zip(row[:task], sizes[:task])) / sum(sizes[:task])
    return streams


def as_config(config: ExperimentConfig | dict) -> ExperimentConfig:
    """A resolved config as it is, or a Tune trial config resolved."""
    return config if isinstance(config, ExperimentConfig) else resolve(trial_overrides(config))


def stopped_by_scheduler_or_done(last_result: dict, config: ExperimentConfig | dict, early_stopping: bool) -> bool:
    """True when a completed trial finished all its tasks, or was stopped after at least one task by an
    early-stopping scheduler; anything else ended because the study was interrupted."""
    done = int(last_result.get("tasks_done") or 0)
    total = as_config(config).data.tasks
    return done >= total or (early_stopping and done > 0)


def row_for(study: str, stage: str, trial_id: str, config: ExperimentConfig | dict, last_result: dict,
            error: str | None) -> tuple[dict, object]:
    """The results row of one trial (a trial that ended before its last task counts as failed)."""
    config = as_config(config)
    done, total = int(last_result.get("tasks_done", 0)), config.data.tasks
    if error is None and done < total:
        error = f"stopped early by the scheduler after {done} of {total} tasks"
    row = results.build_row(study=study, stage=stage, trial_id=trial_id, config=config, metrics=last_result,
                            error=error)
    return row, config


def final_metrics(row: dict) -> dict:
    return {name: row[name] for name in (*results.METRICS, "wall_s", "peak_memory_mb")}


def artifacts(row: dict, last_result: dict) -> dict[str, bytes]:
    """acc_matrix.parquet / .json, config.json (resolved), diagnostics.json (file name -> bytes)."""
    import polars as pl

    matrix = row["acc_matrix"]
    frame = pl.DataFrame({"after_task": list(range(len(matrix))),
                          **{f"task_{j}": [r[j] for r in matrix] for j in range(len(matrix))}})
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    record = {"acc_matrix": matrix, "val_matrix": last_result.get("val_matrix"), "n_test": row["n_test"],
              "n_val": last_result.get("n_val"), "task_wall_s": row["task_wall_s"], "metrics": final_metrics(row)}
    config = json.dumps(json.loads(row["config_json"]), indent=2)
    return {"acc_matrix.parquet": buffer.getvalue(), "acc_matrix.json": results.to_json(record).encode(),
            "config.json": config.encode(), "diagnostics.json": row["diagnostics_json"].encode()}


def error_line(error_file: str | None) -> str:
    """The last line of Tune's error.txt (`ExceptionType: message`), or a placeholder if it is missing."""
    text = Path(error_file).read_text() if error_file and Path(error_file).is_file() else ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:2000] if lines else "trial failed (no error file)"
