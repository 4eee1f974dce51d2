"""A compact console view of a stage: one line per trial (status, task k/T, ACC, the objective).

Ray Tune's default output prints every trial's whole config and result in boxes; a study wants the
progress at a glance (docs/architecture.md §5.3). Tune uses a custom reporter only with its older output engine
(`RAY_AIR_NEW_OUTPUT=0`, set by study/cluster.py). The lines are printed when something changed, at most
every `every_s` seconds (a stage of more than 12 trials lists only the running ones until the end); MLflow
holds the details.
"""

from __future__ import annotations

import time

from ray.tune import ProgressReporter

from study.configs import trial_label, trial_overrides

ALL_LINES_UP_TO = 12  # larger stages (searches) list only their running trials


class CompactReporter(ProgressReporter):
    def __init__(self, objective: str = "val_acc_all", every_s: float = 5.0):
        self.objective, self.every_s = objective, every_s
        self.last_time, self.last_state = 0.0, None

    def should_report(self, trials, done: bool = False) -> bool:
        state = [(t.trial_id, t.status, (t.last_result or {}).get("tasks_done")) for t in trials]
        due = done or time.monotonic() - self.last_time >= self.every_s
        return due and state != self.last_state

    def report(self, trials, done: bool, *sys_info: str) -> None:
        self.last_time = time.monotonic()
        self.last_state = [(t.trial_id, t.status, (t.last_result or {}).get("tasks_done")) for t in trials]
        counts = {}
        for trial in trials:
            counts[trial.status] = counts.get(trial.status, 0) + 1
        header = ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items()))
        print(f"[{time.strftime('%H:%M:%S')}] trials: {header}", flush=True)
        shown = trials if len(trials) <= ALL_LINES_UP_TO or done else [t for t in trials if t.status == "RUNNING"]
        for trial in shown:
            print("  " + self.line(trial), flush=True)

    def line(self, trial) -> str:
        result = trial.last_result or {}
        label = f"{trial_label(trial_overrides(trial.config))}_{trial.trial_id[-5:]}"
        text = f"{label:<44} {trial.status.lower():<10}"
        if "tasks_done" in result:
            text += (f" task {result['tasks_done']}/{result['num_tasks']}  acc {result['acc']:5.1f}  "
                     f"{self.objective} {result[self.objective]:5.1f}")
        return text
