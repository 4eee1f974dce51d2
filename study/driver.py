"""A whole study: check everything, open MLflow, start Ray, run the stages, record, summarise.

    cells   = build_cells(settings)              # method x dataset x backbone overrides
    spaces  = check_study(settings, cells)       # before Ray: bad names, data, weights, search spaces
    tracking = open or reopen the MLflow experiment and parent run; study.json
    with ray_session(address):
        grid, or per cell: search [-> replicate the top K]     # study/tuner.py
    print the mean ± std table; log it on the parent run

Every finished trial is already a row of results.parquet (study/recorder.py); a stage with trials that
neither finished nor failed was interrupted, and the study stops there with the --resume command.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import time
from pathlib import Path

from janus.errors import UserError
from janus.runtime import git_sha, package_versions
from study import results, summary
from study.cells import Cell, build_cells
from study.checks import check_study
from study.recorder import StudyRecorder
from study.settings import StudySettings, read_study_json, write_study_json
from study.tracking import (
    SUMMARY_TABLE,
    StudyTracking,
    check_tracking_uri,
    finish_study,
    mask_words,
    open_study,
    reopen_study,
    ui_command,
)

INTERRUPTED = 130
CLAIM_FILE = ".claimed"   # created exclusively: the one process that owns a new study folder


class Interrupted(Exception):
    """A stage ended with unfinished trials (Ctrl-C): the study can be resumed."""


def run_study(settings: StudySettings) -> int:
    cells = build_cells(settings)
    spaces = check_study(settings, cells)
    check_tracking_uri(settings.tracking_uri)
    from study.cluster import check_address, ray_session, trial_resources

    if settings.address:
        check_address(settings.address)
    check_study_dir(settings)

    logging.getLogger("ray.tune").setLevel(logging.WARNING)  # Tune's INFO lines would cut into the status area
    say = (lambda text: None) if settings.quiet else (lambda text: print(text, flush=True))
    say(f"starting Ray ({settings.address or f'local, {os.cpu_count()} CPUs'}) ...")
    started = time.monotonic()
    with ray_session(settings.address):
        say(f"Ray ready in {time.monotonic() - started:.1f}s; first trials start once their workers have "
            "imported torch")
        resources = trial_resources(settings.cpus_per_trial, settings.gpus_per_trial)
        if not settings.resume:
            claim_study_dir(settings)  # the last check, so a failed one leaves no folder behind
        tracking = start_tracking(settings)
        announce(settings, cells)
        try:
            run_stages(settings, cells, spaces, tracking, resources, device_overrides(settings, resources))
        except (Interrupted, KeyboardInterrupt):
            finish_study(tracking, "KILLED", {}, [])
            print(f"\nstudy {settings.name} interrupted; finish it with:\n  {resume_command(settings)}")
            return INTERRUPTED
    frame = conclude(settings, tracking, {method: tuple(space.SPACE) for method, space in spaces.items()})
    return exit_code(frame, settings)


def exit_code(frame, settings: StudySettings) -> int:
    """0 when at least one trial completed (with a line counting the failed ones), 1 when all failed."""
    statuses = frame["status"].to_list() if frame.height else []
    failed = statuses.count("failed")
    if failed:
        where = f"the error column of {settings.results_path} and the FAILED runs in MLflow"
        if failed == len(statuses):
            print(f"error: all {failed} trials failed; see {where}", file=sys.stderr)
            return 1
        print(f"warning: {failed} of {len(statuses)} trials failed; see {where} "
              f"(rerun them with --resume --retry-failed)", file=sys.stderr)
    return 0


def check_study_dir(settings: StudySettings) -> None:
    """A resumed study needs its study.json; a new one a writable studies folder and an unused name."""
    if settings.resume:
        read_study_json(settings.study_dir)
        return
    try:
        settings.studies_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the studies folder {settings.studies_dir} ({error.strerror}); choose a "
                        "writable --studies-dir") from None
    if not os.access(settings.studies_dir, os.W_OK):
        raise UserError(f"the studies folder {settings.studies_dir} is not writable; choose a writable "
                        "--studies-dir")
    if settings.study_dir.exists() and any(settings.study_dir.iterdir()):
        raise UserError(f"study {settings.name!r} already exists in {settings.studies_dir}; continue it "
                        "with --resume or choose another --study name")


def claim_study_dir(settings: StudySettings) -> None:
    """Create the new study's folder and claim it atomically: of two starts with one name, one fails here."""
    try:
        settings.study_dir.mkdir(exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the study folder {settings.study_dir} ({error.strerror}); choose a "
                        "writable --studies-dir") from None
    try:
        os.close(os.open(settings.study_dir / CLAIM_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        raise UserError(f"study {settings.name!r} is being started by another process; choose another "
                        "--study name") from None


def start_tracking(settings: StudySettings) -> StudyTracking:
    if settings.resume:
        saved = read_study_json(settings.study_dir)
        tracking = StudyTracking(saved["tracking_uri"], saved["experiment_id"], saved["parent_run_id"])
        reopen_study(tracking)
        return tracking
    tags = {"janus.study": settings.name, "git_sha": git_sha(), "argv": shlex.join(mask_words(settings.argv))[:5000],
            **{f"version.{k}": v for k, v in package_versions().items()}}
    params = {"methods": settings.methods, "datasets": settings.datasets, "backbones": settings.backbones,
              "tasks": settings.tasks, "seeds": settings.seeds, "search": settings.search,
              "num_samples": settings.num_samples, "replicate_top": settings.replicate_top,
              "scheduler": settings.scheduler, "objective": settings.objective, "preset": settings.preset,
              "overrides": settings.overrides}
    settings.study_dir.mkdir(parents=True, exist_ok=True)
    tags.update({"methods": ",".join(settings.methods), "datasets": ",".join(settings.datasets),
                 "backbones": ",".join(settings.backbones), "seeds": ",".join(map(str, settings.seeds))})
    tracking = open_study(settings.name, settings.tracking_uri, settings.artifacts_dir, tags, params,
                          description(settings))
    write_study_json(settings, tracking.experiment_id, tracking.parent_run_id)
    return tracking


def device_overrides(settings: StudySettings, resources: dict) -> dict:
    """CPU trials run on the CPU even where a GPU is visible (unless --set optim.device says otherwise)."""
    if resources["gpu"] == 0 and "optim.device" not in settings.overrides:
        return {"optim.device": "cpu"}
    return {}


def run_stages(settings: StudySettings, cells: list[Cell], spaces: dict, tracking, resources, extra) -> None:
    from study.stages import best_configs, grid_plan, replicate_plan, search_plan
    from study.tuner import run_stage

    def run(plan):
        grid = run_stage(plan, settings, tracking, resources)
        if unfinished(grid, plan, settings, tracking):
            raise Interrupted(plan.name)
        return grid

    if settings.search == "none":
        run(grid_plan(cells, settings.seeds, extra))
        return
    for cell in cells:
        plan = search_plan(cell, spaces[cell.method], settings.seeds[0], extra, settings.num_samples)
        grid = run(plan)
        best = best_configs(grid, settings.objective, settings.replicate_top, plan.num_tasks)
        if best:
            run(replicate_plan(plan, best, settings.seeds))


def unfinished(grid, plan, settings: StudySettings, tracking) -> int:
    """Trials of a stage that have no row and no error: interrupted. A trial that finished all its tasks
    but lost its row (the driver died in between) gets its row here."""
    recorded = set(results.read(settings.results_path)["trial_id"].to_list())
    recorder = StudyRecorder(settings.name, plan.stage, settings.results_path, tracking)
    missing = 0
    for result in grid:
        metrics = result.metrics or {}          # a trial that never started has no metrics at all
        trial_id = metrics.get("trial_id")
        if result.error is not None or (trial_id and trial_id in recorded):
            continue
        done, total = metrics.get("tasks_done"), metrics.get("num_tasks")
        if trial_id and done is not None and done == total:
            recorder.record(trial_id, result.config, metrics, error=None)
        else:
            missing += 1
    return missing


def announce(settings: StudySettings, cells: list[Cell]) -> None:
    per_cell = (f"{settings.num_samples} searched configs" if settings.search == "optuna"
                else f"{len(settings.seeds)} seeds")
    print(f"study {settings.name}: {len(cells)} cells (methods {', '.join(settings.methods)}; datasets "
          f"{', '.join(settings.datasets)}; backbones {', '.join(settings.backbones)}) x {per_cell}\n"
          f"  study dir: {settings.study_dir}\n  MLflow:    {ui_command(settings.tracking_uri)}", flush=True)


def description(settings: StudySettings) -> str:
    """The experiment's description in the MLflow UI (Markdown)."""
    search = f"; search {settings.search} ({settings.num_samples} samples)" if settings.search != "none" else ""
    return (f"Janus-LoRA study **{settings.name}**: methods {', '.join(settings.methods)} on "
            f"{', '.join(settings.datasets)} with backbone {', '.join(settings.backbones)}, seeds "
            f"{', '.join(map(str, settings.seeds))}{search}. One child run per trial (the full sequential "
            "protocol); per-task curves `acc_task_<j>`, `acc_new`, `acc_old` (step = 0-based task index); the "
            f"parent run holds the mean ± std table ({SUMMARY_TABLE}) and the report figures.\n\n"
            f"`{shlex.join(['python', '-m', 'study.run', *mask_words(settings.argv)])}`")


def conclude(settings: StudySettings, tracking: StudyTracking, searched: dict):
    """Print and save the mean ± std table, add the analysis report if it is installed, close the parent."""
    frame = results.read(settings.results_path)
    text = summary.render(frame, settings.objective, searched)
    summary_path = settings.study_dir / "summary.md"
    summary_path.write_text(text + "\n")
    print(f"\n{text}", flush=True)
    report = analysis_report(settings)
    finish_study(tracking, "FINISHED", summary.parent_table(frame), [settings.results_path, summary_path])
    print(f"\nstudy {settings.name}: {frame.height} trials recorded "
          f"({(frame['status'] == 'failed').sum()} failed)\n"
          f"  results:   {settings.results_path}\n  study dir: {settings.study_dir}\n"
          + (f"  report:    {report} (python -m analysis.tables --study {settings.study_dir})\n" if report else "")
          + f"  MLflow:    {ui_command(settings.tracking_uri)}")
    return frame


def analysis_report(settings: StudySettings) -> Path | None:
    """The analysis package's tables and figures (analysis.report.study_report), when it is installed."""
    try:
        from analysis.report import study_report
    except ImportError:
        return None
    try:
        study_report(settings.study_dir)
    except UserError as error:
        print(f"note: no analysis report: {error}")
        return None
    claims = settings.study_dir / "report" / "tables" / "claims.md"
    if claims.is_file():
        print(f"\n{claims.read_text()}", flush=True)
    return settings.study_dir / "report"


def resume_command(settings: StudySettings) -> str:
    return shlex.join(["python", "-m", "study.run", "--study", settings.name, "--studies-dir",
                       str(settings.studies_dir), "--resume"])
