"""One stage = one Ray Tune experiment: build it (or restore it after an interruption) and run it.

* Trainable: `tune.with_resources(tune.with_parameters(train_trial, context=...), {"cpu", "gpu"})`,
  fractional GPUs allowed (each trial caps its own memory share, study/trainable.py).
* Search stages: `OptunaSearch(seed=...)` (seeded TPE) with a concurrency limit (`max_concurrent_trials`,
  default 4) and optionally ASHA on `training_iteration` (= tasks done) with a grace period of at least
  half the tasks; the objective is a validation metric (default `val_acc_all`).
* Faults: `FailureConfig(max_failures, fail_fast=False)`: a failing trial is recorded and the study goes
  on; `CheckpointConfig(num_to_keep=1)`: the last task-boundary checkpoint of each trial is kept, and
  keeping it forces an experiment snapshot, so a killed driver loses little.
* Resume: `Tuner.can_restore(path)` then `Tuner.restore(path, trainable, resume_unfinished=True,
  resume_errored=--retry-failed)`; Tune's callbacks and search state come back from the experiment folder.
"""

from __future__ import annotations

import math

from ray import tune
from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig, Tuner
from ray.tune.logger import JsonLoggerCallback

from study.cells import trial_name
from study.progress import ProgressFiles, StudyProgress
from study.recorder import StudyRecorder
from study.settings import StudySettings
from study.stages import StagePlan
from study.tracking import StudyTracking
from study.trainable import TrialContext, train_trial

SEARCH_CONCURRENCY = 4  # TPE proposes blindly beyond a few trials in flight (docs/architecture.md §5.1)


def run_stage(plan: StagePlan, settings: StudySettings, tracking: StudyTracking, resources: dict):
    """Run (or finish, after an interruption) one stage; returns its ResultGrid."""
    trainable = make_trainable(resources, settings.progress_dir)
    path = f"{settings.tune_storage}/{plan.name}"
    if Tuner.can_restore(path):
        tuner = Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=settings.retry_failed)
    else:
        tuner = Tuner(trainable, param_space=plan.param_space, tune_config=tune_config(plan, settings),
                      run_config=run_config(plan, settings, tracking))
    return tuner.fit()


def make_trainable(resources: dict, progress_dir=None):
    context = TrialContext(resources["cpu"], resources["gpu"], str(progress_dir) if progress_dir else None)
    return tune.with_resources(tune.with_parameters(train_trial, context=context), resources)


def tune_config(plan: StagePlan, settings: StudySettings) -> TuneConfig:
    searching = plan.stage == "search"
    limit = settings.max_concurrent or (min(SEARCH_CONCURRENCY, plan.num_samples) if searching else None)
    return TuneConfig(metric=settings.objective, mode="max", search_alg=searcher(settings) if searching else None,
                      scheduler=scheduler(plan, settings) if searching else None, num_samples=plan.num_samples,
                      max_concurrent_trials=limit, trial_name_creator=trial_name,
                      trial_dirname_creator=trial_name, reuse_actors=True)  # no re-import of torch per trial


def searcher(settings: StudySettings):
    from ray.tune.search.optuna import OptunaSearch

    return OptunaSearch(seed=settings.search_seed)  # metric and mode come from TuneConfig


def scheduler(plan: StagePlan, settings: StudySettings):
    """ASHA with a grace period of at least half the tasks (early tasks say little about the last)."""
    if settings.scheduler != "asha":
        return None
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="training_iteration", max_t=plan.num_tasks,
                         grace_period=max(1, math.ceil(plan.num_tasks / 2)), reduction_factor=2)


def run_config(plan: StagePlan, settings: StudySettings, tracking: StudyTracking) -> RunConfig:
    recorder = StudyRecorder(settings.name, plan.stage, settings.results_path, tracking,
                             early_stopping=plan.stage == "search" and scheduler(plan, settings) is not None)
    return RunConfig(name=plan.name, storage_path=settings.tune_storage,
                     failure_config=FailureConfig(max_failures=settings.max_failures, fail_fast=False),
                     checkpoint_config=CheckpointConfig(num_to_keep=1), callbacks=[recorder, JsonLoggerCallback()],
                     progress_reporter=StudyProgress(ProgressFiles(settings.progress_dir), quiet=settings.quiet),
                     verbose=1)
