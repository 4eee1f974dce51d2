"""The study's live progress: one status area, redrawn in place on a terminal, plain lines otherwise.

Ray Tune's default output prints every trial's config and result in boxes; a study wants its progress at a
glance (docs/architecture.md §5.3). Tune uses a custom reporter only with its older output engine
(`RAY_AIR_NEW_OUTPUT=0`, set by study/cluster.py).

* On a terminal, every second: an overall line (trials done / running / pending / failed, a bar, elapsed and
  the stage's ETA), then one line per running trial: label, task t/T, epoch e/E, steps/s, the last accuracy,
  its elapsed time and ETA. Epoch-level fields come from the trials' progress files (`ProgressFiles`: each
  trial writes its last `janus.progress.EpochEnd` there; trials on other nodes show task-level progress).
* Not a terminal (CI logs, `make run > log`): the overall line every `every_s` seconds when something
  changed, a line per failed trial, and the final line: a 5-minute default study prints about 15 lines.
* `--quiet`: nothing.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from ray.tune import ProgressReporter

from janus.progress import EpochEnd, bar, clock
from study.cells import trial_label, trial_overrides

STATUS = {"TERMINATED": "done", "RUNNING": "running", "PENDING": "pending", "ERROR": "failed", "PAUSED": "paused"}


class ProgressFiles:
    """One small JSON file per trial under `folder`: its last EpochEnd (written atomically)."""

    def __init__(self, folder: str | Path | None):
        self.folder = Path(folder) if folder else None

    def write(self, trial_id: str, event: EpochEnd, node: str = "") -> None:
        if self.folder is None or not trial_id:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f".{trial_id}.json.tmp"
            tmp.write_text(json.dumps({**event.to_dict(), "node_id": node, "time": time.time()}))
            os.replace(tmp, self.folder / f"{trial_id}.json")
        except OSError:
            pass  # progress is a convenience: a full or read-only disk must not fail the trial

    def read(self, trial_id: str) -> dict:
        if self.folder is None:
            return {}
        try:
            return json.loads((self.folder / f"{trial_id}.json").read_text())
        except (OSError, ValueError):
            return {}


def trial_fraction(result: dict, epoch: dict) -> float:
    """How much of a trial's protocol is done: finished tasks, plus the current task's share of epochs."""
    total = result.get("num_tasks") or epoch.get("num_tasks")
    if not total:
        return 0.0
    done = result.get("tasks_done", 0)
    if epoch and epoch.get("task", -1) >= done:
        done += (epoch["epoch"] + 1) / epoch["epochs"]
    return min(1.0, done / total)


class StudyProgress(ProgressReporter):
    def __init__(self, files: ProgressFiles | None = None, quiet: bool = False, stream=None,
                 every_s: float = 20.0, live: bool | None = None):
        self.files, self.quiet, self._stream = files or ProgressFiles(None), quiet, stream
        self.live = (bool(getattr(self.stream, "isatty", lambda: False)()) if live is None else live) and not quiet
        self.every_s = 1.0 if self.live else every_s
        self.start = time.monotonic()
        self.last_time, self.last_state, self.drawn = -1e9, None, 0
        self.started: dict[str, float] = {}
        self.reported_failures: set[str] = set()

    @property
    def stream(self):
        return self._stream or sys.stdout    # looked up when used: Tune pickles its reporter

    def __getstate__(self):
        return {**self.__dict__, "_stream": None}

    # --- Tune's reporter interface ---------------------------------------------------------------------
    def should_report(self, trials, done: bool = False) -> bool:
        if self.quiet:
            return False
        due = done or time.monotonic() - self.last_time >= self.every_s
        return due and (self.live or done or self._state(trials) != self.last_state)

    def report(self, trials, done: bool, *sys_info: str) -> None:
        self.last_time, self.last_state = time.monotonic(), self._state(trials)
        now = time.monotonic()
        for trial in trials:
            if trial.status == "RUNNING":
                self.started.setdefault(trial.trial_id, now)
        lines = [self.overall(trials)]
        if self.live:
            lines += [self.trial_line(t) for t in trials if t.status == "RUNNING"]
            self._redraw(lines, done)
        else:
            from study.recorder import error_line

            lines += [f"  failed: {self.label(t)}: {error_line(t.error_file)}" for t in trials
                      if t.status == "ERROR" and t.trial_id not in self.reported_failures]
            self.reported_failures |= {t.trial_id for t in trials if t.status == "ERROR"}
            print("\n".join(lines), file=self.stream, flush=True)

    # --- the lines -------------------------------------------------------------------------------------
    def overall(self, trials) -> str:
        counts = {name: 0 for name in ("done", "running", "pending", "failed")}
        for trial in trials:
            name = STATUS.get(trial.status, trial.status.lower())
            counts[name] = counts.get(name, 0) + 1
        fraction = self.stage_fraction(trials)
        elapsed = time.monotonic() - self.start
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else float("nan")
        parts = " · ".join(f"{n} {name}" for name, n in counts.items())
        return (f"[{clock(elapsed)}] trials {parts} {bar(fraction)} {100 * fraction:3.0f}%  "
                f"ETA {clock(eta)}")

    def stage_fraction(self, trials) -> float:
        if not trials:
            return 0.0
        total = 0.0
        for trial in trials:
            if trial.status in ("TERMINATED", "ERROR"):
                total += 1.0
            elif trial.status == "RUNNING":
                total += trial_fraction(trial.last_result or {}, self.files.read(trial.trial_id))
        return total / len(trials)

    def trial_line(self, trial) -> str:
        result, epoch = trial.last_result or {}, self.files.read(trial.trial_id)
        text = f"  {self.label(trial):<40}"
        tasks = result.get("num_tasks") or epoch.get("num_tasks")
        if epoch and tasks:
            text += (f" task {epoch['task'] + 1}/{tasks} epoch {epoch['epoch'] + 1}/{epoch['epochs']}"
                     f" {epoch['steps'] / epoch['seconds'] if epoch['seconds'] else 0:5.1f} steps/s")
        elif tasks:
            text += f" task {result.get('tasks_done', 0)}/{tasks} done"
        else:
            text += " starting"
        if "acc" in result:
            text += f"  acc {result['acc']:5.1f}"
        elapsed = time.monotonic() - self.started.get(trial.trial_id, time.monotonic())
        fraction = trial_fraction(result, epoch)
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else float("nan")
        return text + f"  {clock(elapsed)} ETA {clock(eta)}"

    @staticmethod
    def label(trial) -> str:
        return trial_label(trial_overrides(trial.config))

    # --- drawing ---------------------------------------------------------------------------------------
    def _redraw(self, lines: list[str], done: bool) -> None:
        up = f"\x1b[{self.drawn}F" if self.drawn else ""
        self.stream.write(up + "".join(line + "\x1b[K\n" for line in lines) + "\x1b[J")
        self.stream.flush()
        self.drawn = 0 if done else len(lines)

    @staticmethod
    def _state(trials):
        return [(t.trial_id, t.status, (t.last_result or {}).get("tasks_done")) for t in trials]
