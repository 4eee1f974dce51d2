"""The Ray Tune function trainable: one trial = one full sequential protocol run for one config and seed.

    train_trial(config, context)
      cfg = resolve(overrides in config)                  # typed, validated
      saved = the trial's checkpoint, if Tune restored one
      run_experiment(cfg, on_task_end=report_task, resume=saved)   # continues after the saved task
          after each task: tune.report(metrics, checkpoint=task-boundary checkpoint)

The reported metrics include `val_acc_all` (mean over all T tasks, unseen tasks counting 0, on the
validation split), the search objective that does not favour trials stopped early (docs/architecture.md §5.2),
and everything the driver needs for the trial's MLflow run and results row (accuracy matrices, test sizes,
wall times, diagnostics, device, git SHA): the driver does all the recording (study/recorder.py).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from ray import tune

from janus.errors import UserError
from janus.protocol import TaskReport, run_experiment
from janus.runtime import device_description, git_sha, package_versions, peak_rss_mb, resolve_device
from study.cells import resolve, trial_overrides
from study.progress import ProgressFiles
from study.results import to_json

CHECKPOINT_FILE = "trial.pt"


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a stage shares (passed with `tune.with_parameters`)."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    progress_dir: str | None = None   # where the trial writes its last epoch event (study/progress.py)


def train_trial(config: dict, context: TrialContext) -> None:
    cfg = resolve(trial_overrides(config))
    prepare_process(context)
    saved = load_checkpoint(tune.get_checkpoint())
    reporter = TaskReporter(device_description(resolve_device(cfg.optim.device)), saved.get("wall_s", 0.0))
    files, trial_id, node = ProgressFiles(context.progress_dir), tune.get_context().get_trial_id(), node_id()
    run_experiment(cfg, on_task_end=reporter, resume=saved.get("protocol"),
                   on_epoch_end=lambda event: files.write(trial_id, event, node))


def prepare_process(context: TrialContext) -> None:
    """Threads = the trial's CPUs; a fractional GPU caps this process's share of the GPU's memory; Ray's
    per-checkpoint INFO lines stay out of the console."""
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    torch.set_num_threads(max(1, int(context.cpus_per_trial)))
    if 0 < context.gpus_per_trial < 1 and torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(context.gpus_per_trial)


def load_checkpoint(checkpoint) -> dict:
    """{"protocol", "wall_s"} from a task-boundary checkpoint, or {} on a fresh start."""
    if checkpoint is None:
        return {}
    with checkpoint.as_directory() as folder:
        return read_checkpoint(Path(folder, CHECKPOINT_FILE))


def read_checkpoint(path: Path) -> dict:
    """A trial checkpoint holds tensors and plain containers only, and is read that way: a planted file
    that would run code when unpickled is refused (the storage path is a trust boundary)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0][:300]
        raise UserError(f"trial checkpoint {path} holds more than tensors and plain containers ({first}); "
                        "it was not written by this harness: delete it, or resume without it") from None


class TaskReporter:
    """`on_task_end` callback: `tune.report` of the task's metrics with a task-boundary checkpoint."""

    def __init__(self, device: str, wall_before: float):
        self.device, self.started, self.wall_before = device, time.perf_counter(), wall_before

    def __call__(self, report: TaskReport) -> None:
        metrics = task_metrics(report, self.wall_before + time.perf_counter() - self.started, self.device)
        with tempfile.TemporaryDirectory() as folder:
            torch.save({"protocol": report.checkpoint(), "wall_s": metrics["wall_s"]}, Path(folder, CHECKPOINT_FILE))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def task_metrics(report: TaskReport, wall_s: float, device: str) -> dict:
    state = report.state
    return {**report.metrics, "task": report.task, "tasks_done": state.tasks_done, "num_tasks": state.num_tasks,
            "task_time_s": state.task_wall_s[-1], "wall_s": wall_s, "peak_memory_mb": report.peak_memory_mb,
            "acc_matrix": _floats(state.acc_matrix), "val_matrix": _floats(state.val_matrix),
            "n_test": list(state.n_test), "n_val": list(state.n_val), "task_wall_s": list(state.task_wall_s),
            "diagnostics_json": to_json(state.diagnostics), "versions_json": json.dumps(package_versions()),
            "git_sha": git_sha(), "device": device, "node_id": node_id(), **system_metrics()}


def node_id() -> str:
    """The Ray node this trial runs on ("local" outside Ray)."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"


def system_metrics() -> dict[str, float]:
    """The trial process's resource use so far (MLflow groups `system/` metrics in their own section):
    CPU time, peak resident memory, threads, and on CUDA the peak allocated and reserved GPU memory."""
    times = os.times()
    metrics = {"system/cpu_time_s": times.user + times.system, "system/max_rss_mb": peak_rss_mb(),
               "system/torch_threads": float(torch.get_num_threads())}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        metrics["system/gpu_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
        metrics["system/gpu_peak_reserved_mb"] = torch.cuda.max_memory_reserved() / 2**20
    return metrics


def _floats(matrix) -> list[list[float]]:
    return [[float(a) for a in row] for row in matrix]
