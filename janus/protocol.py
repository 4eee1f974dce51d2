"""The sequential class-incremental protocol: tasks -> train -> evaluate -> accuracy matrix -> report.

    cfg        = resolve_config(config)                # once; typed from here on
    experiment = build_experiment(cfg)                 # janus/experiment.py: backbone (timm, frozen),
                                                       # scenario (tasks, class order), method (registry)
    for task in experiment.scenario.tasks:
        train_task(method, task)                       # before_task ... after_step
        diagnostics = method.after_task(task)
        row = evaluate(method, seen tasks)             # class-incremental argmax over all seen classes
        on_task_end(report)                            # reporting, checkpoints

`run_experiment` is the one call from Python; it returns the accuracy matrix (percent, NaN above the
diagonal's right, i.e. for unseen tasks), the test-set sizes, the summary metrics and per-task wall times.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch
from torch.utils.data import ConcatDataset

from janus.classifier import NMEClassifier, check_classifier
from janus.config import ExperimentConfig
from janus.experiment import Experiment, build_experiment
from janus.methods import Method, TaskInfo, resolve_config
from janus.metrics import mean_over_all_tasks, summarize
from janus.progress import EpochCallback
from janus.runtime import autocast, peak_memory_mb, rng_state, set_rng_state
from janus.training import train_task


@dataclass
class ProtocolState:
    """Everything recorded so far; also what a task-boundary checkpoint restores."""

    num_tasks: int
    acc_matrix: list[list[float]] = field(default_factory=list)   # rows: tasks trained; NaN for unseen
    val_matrix: list[list[float]] = field(default_factory=list)
    n_test: list[int] = field(default_factory=list)
    n_val: list[int] = field(default_factory=list)
    task_wall_s: list[float] = field(default_factory=list)
    diagnostics: list[dict] = field(default_factory=list)
    train_stats: list[dict] = field(default_factory=list)

    @property
    def tasks_done(self) -> int:
        return len(self.acc_matrix)

    def seen(self, matrix: list[list[float]]) -> list[list[float]]:
        return [row[: self.tasks_done] for row in matrix]

    def metrics(self) -> dict[str, float]:
        """Summary of the test matrix, plus the validation objectives used by searches."""
        result = summarize(self.seen(self.acc_matrix), self.n_test)
        result["acc_all"] = mean_over_all_tasks(self.seen(self.acc_matrix), self.n_test, self.num_tasks)
        if self.n_val and sum(self.n_val):
            val = summarize(self.seen(self.val_matrix), self.n_val)
            result["val_acc"], result["val_maa"] = val["acc"], val["maa"]
            result["val_acc_all"] = mean_over_all_tasks(self.seen(self.val_matrix), self.n_val, self.num_tasks)
        return result


@dataclass
class TaskReport:
    """Passed to `on_task_end` after each task."""

    task: int
    state: ProtocolState
    metrics: dict[str, float]
    checkpoint: Callable[[], dict]          # lazily builds the task-boundary checkpoint
    peak_memory_mb: float


@dataclass
class ExperimentResult:
    config: ExperimentConfig
    acc_matrix: np.ndarray                  # T x T, percent, NaN for j > t
    n_test: list[int]
    metrics: dict[str, float]
    task_wall_s: list[float]
    diagnostics: list[dict]
    val_matrix: np.ndarray
    n_val: list[int]
    peak_memory_mb: float
    device: str


def run_experiment(config: ExperimentConfig | dict, on_task_end: Callable[[TaskReport], None] | None = None,
                   resume: dict | None = None, on_epoch_end: EpochCallback | None = None) -> ExperimentResult:
    """Run the full sequential protocol for one config and seed (see the module docstring).

    `config` is resolved here, once (`janus.methods.resolve_config`); `resume` is a checkpoint produced by
    `TaskReport.checkpoint()`, training continues at the next task. `on_epoch_end` gets a
    `janus.progress.EpochEnd` after every training epoch (progress bars).
    """
    cfg = resolve_config(config if isinstance(config, ExperimentConfig) else ExperimentConfig.from_dict(config))
    experiment = build_experiment(cfg)
    method, device = experiment.method, experiment.device
    nme = NMEClassifier(experiment.context.feature_dim) if check_classifier(cfg.eval.classifier) == "nme" else None
    state = ProtocolState(num_tasks=experiment.num_tasks)
    if resume is not None:
        state = _restore(method, nme, resume)
    for task in experiment.scenario.tasks[state.tasks_done:]:
        _run_task(experiment, nme, experiment.task_info(task), state, on_epoch_end)
        if on_task_end is not None:
            on_task_end(TaskReport(task.index, state, state.metrics(), partial(_checkpoint, method, nme, state),
                                   peak_memory_mb(device)))
    return ExperimentResult(cfg, np.array(state.acc_matrix), state.n_test, state.metrics(), state.task_wall_s,
                            state.diagnostics, np.array(state.val_matrix), state.n_val,
                            peak_memory_mb(device), str(device))


def _run_task(experiment: Experiment, nme: NMEClassifier | None, info: TaskInfo, state: ProtocolState,
              on_epoch_end: EpochCallback | None) -> None:
    method, cfg = experiment.method, experiment.cfg
    start = time.perf_counter()
    state.train_stats.append(train_task(method, info, cfg.optim, cfg.seed, on_epoch_end))
    state.diagnostics.append(method.after_task(info))
    if nme is not None:
        nme.add_task(method, info)
    if info.device.type == "cuda":
        torch.cuda.synchronize(info.device)
    state.task_wall_s.append(time.perf_counter() - start)
    seen = experiment.scenario.tasks[: info.index + 1]
    sets = [t.test for t in seen] + [t.val for t in seen]      # one loader (one worker start) for both
    with method.merged_for_eval() if cfg.eval.merges(info.device) else contextlib.nullcontext():
        row, sizes = evaluate(method, sets, experiment.loader, info.device, cfg.optim.precision, nme)
    test_row, val_row, n_test, n_val = row[:len(seen)], row[len(seen):], sizes[:len(seen)], sizes[len(seen):]
    pad = [math.nan] * (state.num_tasks - len(seen))
    state.acc_matrix.append(test_row + pad)
    state.val_matrix.append(val_row + pad)
    state.n_test, state.n_val = n_test, n_val


@torch.no_grad()
def evaluate(method: Method, datasets, make, device, precision: str,
             nme: NMEClassifier | None = None) -> tuple[list[float], list[int]]:
    """Class-incremental accuracy (percent) on each dataset: argmax over all seen classes, no task id, of the
    method's scores (eval.classifier=heads) or of the cosine to each class prototype (nme).

    All datasets go through one loader over their concatenation (one start of the loader's workers, full
    batches across dataset boundaries); each image's hit is then counted for the dataset it came from."""
    method.eval()
    predict = method.predict if nme is None else (lambda x: nme.scores(method.features(x), method.heads.num_classes))
    sizes = [len(d) for d in datasets]
    hits = []
    for x, y in make(ConcatDataset(datasets)) if sum(sizes) else []:
        with autocast(device, precision):
            scores = predict(x.to(device, non_blocking=True))
        hits.append(scores.argmax(dim=1) == y.to(device))
    owner = torch.repeat_interleave(torch.arange(len(sizes), device=device), torch.tensor(sizes, device=device))
    correct = torch.zeros(len(sizes), dtype=torch.long, device=device)
    if hits:
        correct.index_add_(0, owner, torch.cat(hits).long())
    counts = correct.tolist()                                    # one host sync for every dataset
    return [100.0 * c / n if n else math.nan for c, n in zip(counts, sizes)], sizes


def _checkpoint(method: Method, nme: NMEClassifier | None, state: ProtocolState) -> dict:
    return {"state": copy.deepcopy(state.__dict__), "method": method.checkpoint_state(), "rng": rng_state(),
            "nme": None if nme is None else nme.state_dict()}


def _restore(method: Method, nme: NMEClassifier | None, checkpoint: dict) -> ProtocolState:
    method.load_checkpoint(checkpoint["method"])
    if nme is not None:
        nme.load_state_dict(checkpoint["nme"])
    set_rng_state(checkpoint["rng"])
    return ProtocolState(**checkpoint["state"])
