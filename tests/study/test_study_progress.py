"""The study's status area: plain lines in logs, a redrawn block on a terminal, nothing with --quiet."""

import io
from types import SimpleNamespace

from janus.progress import EpochEnd
from study.progress import ProgressFiles, StudyProgress, trial_fraction


class Terminal(io.StringIO):
    def isatty(self):
        return True


def trial(trial_id, status, tasks_done=None, acc=None):
    result = {} if tasks_done is None else {"tasks_done": tasks_done, "num_tasks": 5, "acc": acc}
    return SimpleNamespace(trial_id=trial_id, status=status, last_result=result, error_file=None,
                           config={"cell": {"method.name": "janus", "data.dataset": "digits", "seed": 1}})


def test_fraction_counts_finished_tasks_and_the_current_tasks_epochs():
    assert trial_fraction({"tasks_done": 2, "num_tasks": 5}, {}) == 0.4
    epoch = {"task": 2, "epoch": 4, "epochs": 10, "num_tasks": 5}
    assert trial_fraction({"tasks_done": 2, "num_tasks": 5}, epoch) == 0.5
    assert trial_fraction({}, {"task": 0, "epoch": 9, "epochs": 10, "num_tasks": 5}) == 0.2


def test_log_output_is_one_overall_line_per_report(tmp_path):
    files = ProgressFiles(tmp_path)
    files.write("b", EpochEnd(task=2, num_tasks=5, epoch=4, epochs=10, steps=30, seconds=1.5, task_seconds=7.0))
    log = io.StringIO()
    progress = StudyProgress(files, stream=log)
    trials = [trial("a", "TERMINATED", 5, 60.0), trial("b", "RUNNING", 2, 55.0), trial("c", "PENDING")]
    assert progress.should_report(trials)
    progress.report(trials, done=False)
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and "1 done · 1 running · 1 pending · 0 failed" in lines[0]
    assert " 50%" in lines[0]                     # (1 + 0.5 + 0) / 3
    assert not progress.should_report(trials)      # nothing changed, and not yet due
    progress.report(trials, done=True)
    assert len(log.getvalue().splitlines()) == 2


def test_terminal_output_redraws_a_block_with_one_line_per_running_trial(tmp_path):
    files = ProgressFiles(tmp_path)
    files.write("b", EpochEnd(task=2, num_tasks=5, epoch=4, epochs=10, steps=30, seconds=1.5, task_seconds=7.0))
    terminal = Terminal()
    progress = StudyProgress(files, stream=terminal)
    trials = [trial("a", "TERMINATED", 5, 60.0), trial("b", "RUNNING", 2, 55.0)]
    progress.report(trials, done=False)
    progress.report(trials, done=False)
    text = terminal.getvalue()
    assert "task 3/5 epoch 5/10  20.0 steps/s  acc  55.0" in text
    assert text.count("\x1b[2F") == 1              # the second report moved up over the first block's 2 lines


def test_quiet_reports_nothing():
    progress = StudyProgress(quiet=True, stream=Terminal())
    assert not progress.should_report([trial("a", "RUNNING", 1, 50.0)], done=True)
