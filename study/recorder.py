"""The driver-side Tune callback that turns every finished trial into a results row.

It runs in the driver process (one writer), when Tune reports a trial completed or failed, so rows appear
as trials finish. A trial's row is built from its config and its last `tune.report` (see
study/trainable.py); a failed trial's row carries the exception line of its `error.txt`. The callback also
closes the MLflow run of a trial whose own process could not: one stopped early by the scheduler (KILLED)
or one that died (FAILED).
"""

from __future__ import annotations

from pathlib import Path

from ray import tune

from study import results
from study.configs import resolve, trial_overrides
from study.tracking import end_run


class ResultRecorder(tune.Callback):
    def __init__(self, study: str, stage: str, results_path: Path, tracking_uri: str):
        self.study, self.stage = study, stage
        self.results_path, self.tracking_uri = Path(results_path), tracking_uri

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.record(trial.trial_id, trial.config, trial.last_result or {}, error=None)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.record(trial.trial_id, trial.config, trial.last_result or {}, error=error_line(trial.error_file))

    def record(self, trial_id: str, tune_config: dict, last_result: dict, error: str | None) -> dict:
        row, config = row_for(self.study, self.stage, trial_id, tune_config, last_result, error)
        results.upsert(self.results_path, [row], results.cfg_dtypes(config))
        run_id = last_result.get("mlflow_run_id")
        if run_id and row["status"] == "failed":
            end_run(self.tracking_uri, run_id, "FAILED" if error else "KILLED", row["error"])
        return row


def row_for(study: str, stage: str, trial_id: str, tune_config: dict, last_result: dict,
            error: str | None) -> tuple[dict, object]:
    """The results row of one trial (a trial that ended before its last task counts as failed)."""
    config = resolve(trial_overrides(tune_config))
    done, total = int(last_result.get("tasks_done", 0)), config.data.tasks
    if error is None and done < total:
        error = f"stopped early by the scheduler after {done} of {total} tasks"
    row = results.build_row(study=study, stage=stage, trial_id=trial_id, config=config, metrics=last_result,
                            error=error)
    return row, config


def error_line(error_file: str | None) -> str:
    """The last line of Tune's error.txt (`ExceptionType: message`), or a placeholder if it is missing."""
    text = Path(error_file).read_text() if error_file and Path(error_file).is_file() else ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:2000] if lines else "trial failed (no error file)"
