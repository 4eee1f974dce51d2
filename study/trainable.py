"""The Ray Tune function trainable: one trial = one full sequential protocol run for one config and seed.

    train_trial(config, context)
      cfg = resolve(overrides in config)                       # typed, validated
      resume from the trial's checkpoint, if Tune restored one  # next task after the saved boundary
      open (or continue) the trial's MLflow child run
      run_experiment(cfg, on_task_end=...)                     # after each task:
          MLflow metrics at step=task; tune.report(metrics, checkpoint=task-boundary checkpoint)
      final metrics and artifacts -> MLflow

The reported metrics include `val_acc_all` (mean over all T tasks, unseen tasks counting 0, on the
validation split), the search objective that does not favour trials stopped early (ecosystem.md gotcha 5),
and everything a results row needs (accuracy matrix, test sizes, wall times, diagnostics).
"""

from __future__ import annotations

import io
import json
import logging
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from ray import tune

from janus.protocol import ExperimentResult, TaskReport, run_experiment
from janus.runtime import device_description, git_sha, package_versions, resolve_device
from study.configs import resolve, trial_overrides
from study.tracking import StudyTracking, TrialRun

CHECKPOINT_FILE = "trial.pt"


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a stage shares (passed with `tune.with_parameters`)."""

    study: str
    stage: str
    tracking: StudyTracking
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0


def train_trial(config: dict, context: TrialContext) -> None:
    cfg = resolve(trial_overrides(config))
    prepare_process(context)
    saved = load_checkpoint(tune.get_checkpoint())
    run = open_run(context, cfg, saved.get("mlflow_run_id"))
    reporter = TaskReporter(run, device_description(resolve_device(cfg.optim.device)), saved.get("wall_s", 0.0))
    try:
        result = run_experiment(cfg, on_task_end=reporter, resume=saved.get("protocol"))
    except Exception as error:  # NaN loss, a bad batch...: the run says FAILED, Tune records the error
        run.fail(error)
        raise
    run.finish({**result.metrics, "wall_s": reporter.wall_s(), "peak_memory_mb": result.peak_memory_mb},
               artifacts(result))


def prepare_process(context: TrialContext) -> None:
    """Threads = the trial's CPUs; a fractional GPU caps this process's share of the GPU's memory; Ray's
    per-checkpoint INFO lines stay out of the console."""
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    torch.set_num_threads(max(1, int(context.cpus_per_trial)))
    if 0 < context.gpus_per_trial < 1 and torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(context.gpus_per_trial)


def load_checkpoint(checkpoint) -> dict:
    """{"protocol", "mlflow_run_id", "wall_s"} from a task-boundary checkpoint, or {} on a fresh start."""
    if checkpoint is None:
        return {}
    with checkpoint.as_directory() as folder:
        return torch.load(Path(folder, CHECKPOINT_FILE), map_location="cpu", weights_only=False)


def open_run(context: TrialContext, cfg, run_id: str | None) -> TrialRun:
    trial = tune.get_context()
    tags = {"janus.study": context.study, "stage": context.stage, "method": cfg.method.name,
            "dataset": cfg.data.dataset, "backbone": cfg.backbone.name, "tasks": str(cfg.data.tasks),
            "seed": str(cfg.seed), "git_sha": git_sha(),
            "device": device_description(resolve_device(cfg.optim.device)),
            **{f"version.{k}": v for k, v in package_versions().items()}}
    return TrialRun.open(context.tracking, trial.get_trial_id(), trial.get_trial_name(), tags, cfg.to_flat(),
                         run_id=run_id)


class TaskReporter:
    """`on_task_end` callback: MLflow metrics, then `tune.report` with a task-boundary checkpoint."""

    def __init__(self, run: TrialRun, device: str, wall_before: float):
        self.run, self.device = run, device
        self.started, self.wall_before = time.perf_counter(), wall_before

    def wall_s(self) -> float:
        return self.wall_before + time.perf_counter() - self.started

    def __call__(self, report: TaskReport) -> None:
        metrics = task_metrics(report, self.wall_s(), self.device, self.run.run_id)
        self.run.log_task(report.task, metrics)
        with tempfile.TemporaryDirectory() as folder:
            torch.save({"protocol": report.checkpoint(), "mlflow_run_id": self.run.run_id,
                        "wall_s": metrics["wall_s"]}, Path(folder, CHECKPOINT_FILE))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def task_metrics(report: TaskReport, wall_s: float, device: str, run_id: str) -> dict:
    state = report.state
    return {**report.metrics, "task": report.task, "tasks_done": state.tasks_done, "num_tasks": state.num_tasks,
            "task_time_s": state.task_wall_s[-1], "wall_s": wall_s, "peak_memory_mb": report.peak_memory_mb,
            "acc_matrix": [list(map(float, row)) for row in state.acc_matrix], "n_test": list(state.n_test),
            "task_wall_s": list(state.task_wall_s), "diagnostics_json": to_json(state.diagnostics),
            "mlflow_run_id": run_id, "git_sha": git_sha(), "device": device}


def artifacts(result: ExperimentResult) -> dict[str, bytes]:
    """acc_matrix.parquet / .json, config.json (resolved), diagnostics.json."""
    import polars as pl

    matrix = result.acc_matrix.tolist()
    frame = pl.DataFrame({"after_task": list(range(len(matrix))),
                          **{f"task_{j}": [row[j] for row in matrix] for j in range(len(matrix))}})
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    record = {"acc_matrix": matrix, "val_matrix": result.val_matrix.tolist(), "n_test": result.n_test,
              "n_val": result.n_val, "task_wall_s": result.task_wall_s, "metrics": result.metrics}
    return {"acc_matrix.parquet": buffer.getvalue(), "acc_matrix.json": to_json(record).encode(),
            "config.json": json.dumps(result.config.to_dict(), indent=2, default=list).encode(),
            "diagnostics.json": to_json(result.diagnostics).encode()}


def to_json(value) -> str:
    """Strict JSON: NaN -> null, tensors and numpy values -> lists/numbers."""
    return json.dumps(_clean(value), default=lambda v: _clean(v.tolist()) if hasattr(v, "tolist") else str(v))


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value
