"""Progress inside a run: an event at the end of every training epoch, and a one-line console bar.

    run_experiment(cfg, on_epoch_end=ConsoleBar().epoch)     # what `python -m janus` does

On a terminal the bar redraws one line in place (task, epoch, a bar, steps/s, elapsed and ETA of the task);
when the output is not a terminal (CI logs, files) it prints nothing per epoch, so logs keep only the
per-task lines. The study's trials send the same events to the driver's status area (study/progress.py).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class EpochEnd:
    """Sent after each training epoch of a task (0-based task and epoch, as everywhere in the code)."""

    task: int
    num_tasks: int
    epoch: int
    epochs: int
    steps: int              # optimizer steps in this epoch
    seconds: float          # wall time of this epoch
    task_seconds: float     # wall time of the task's training so far

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else float("nan")

    @property
    def task_eta_s(self) -> float:
        """Seconds left in this task's training at the pace so far."""
        done = self.epoch + 1
        return self.task_seconds * (self.epochs - done) / done

    def to_dict(self) -> dict:
        return asdict(self)


EpochCallback = Callable[[EpochEnd], None]


def clock(seconds: float) -> str:
    """1:05, 12:30, 1:02:03."""
    if seconds != seconds or seconds < 0:          # NaN or unknown
        return "-:--"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def bar(fraction: float, width: int = 20) -> str:
    """|█████·····| for a fraction in [0, 1]."""
    filled = max(0, min(width, int(round(fraction * width))))
    return "|" + "█" * filled + "·" * (width - filled) + "|"


class ConsoleBar:
    """A one-line epoch bar on a terminal (redrawn in place); silent when the stream is not a terminal or
    `enabled` is False (`--quiet`). Call `clear()` before printing a line of your own."""

    def __init__(self, stream=None, enabled: bool = True, label: str = ""):
        self.stream = stream or sys.stdout
        self.live = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self.label, self.drawn = label, False

    def epoch(self, event: EpochEnd) -> None:
        if not self.live:
            return
        done = (event.epoch + 1) / event.epochs
        self.line(f"{self.label}task {event.task + 1}/{event.num_tasks}  epoch {event.epoch + 1}/{event.epochs} "
                  f"{bar(done)} {event.steps_per_s:5.1f} steps/s  {clock(event.task_seconds)} "
                  f"ETA {clock(event.task_eta_s)}")

    def line(self, text: str) -> None:
        """Redraw `text` in place on a terminal; print it as a line otherwise."""
        if self.live:
            self.stream.write("\r" + text + "\x1b[K")
            self.stream.flush()
            self.drawn = True
        else:
            print(text, file=self.stream, flush=True)

    def clear(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn = False


class EpochTimer:
    """Times the epochs of one task for `EpochEnd` events."""

    def __init__(self):
        self.task_start = self.epoch_start = time.perf_counter()

    def start_epoch(self) -> None:
        self.epoch_start = time.perf_counter()

    def event(self, task: int, num_tasks: int, epoch: int, epochs: int, steps: int) -> EpochEnd:
        now = time.perf_counter()
        return EpochEnd(task, num_tasks, epoch, epochs, steps, now - self.epoch_start, now - self.task_start)
