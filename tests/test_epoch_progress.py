"""Epoch events and the console bar of `python -m janus` / `python -m janus.pretrain`."""

import io

from janus import run_experiment
from janus.progress import ConsoleBar, EpochEnd, bar, clock
from janus.testing import tiny_config


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_every_epoch_of_every_task_sends_one_event_in_order():
    events = []
    run_experiment(tiny_config(**{"optim.epochs": 2}), on_epoch_end=events.append)
    assert [(e.task, e.epoch, e.epochs, e.num_tasks) for e in events] == [(0, 0, 2, 2), (0, 1, 2, 2),
                                                                          (1, 0, 2, 2), (1, 1, 2, 2)]
    assert all(e.steps == 2 and e.seconds > 0 and e.task_seconds >= e.seconds for e in events)  # 29 images / 16


def test_eta_extrapolates_the_pace_of_the_task():
    event = EpochEnd(task=0, num_tasks=5, epoch=1, epochs=10, steps=20, seconds=2.0, task_seconds=4.0)
    assert event.task_eta_s == 16.0 and event.steps_per_s == 10.0
    assert clock(65) == "1:05" and clock(3723) == "1:02:03" and clock(float("nan")) == "-:--"
    assert bar(0.5, 10) == "|█████·····|"


def test_the_bar_redraws_in_place_on_a_terminal_and_is_silent_in_a_log():
    event = EpochEnd(0, 5, 2, 10, 20, 1.0, 3.0)
    terminal, log = Terminal(), io.StringIO()
    ConsoleBar(terminal).epoch(event)
    ConsoleBar(log).epoch(event)
    assert terminal.getvalue().startswith("\r") and "task 1/5  epoch 3/10" in terminal.getvalue()
    assert "\n" not in terminal.getvalue() and log.getvalue() == ""
    quiet = Terminal()
    ConsoleBar(quiet, enabled=False).epoch(event)
    assert quiet.getvalue() == ""


def test_line_prints_plain_lines_when_not_a_terminal():
    log = io.StringIO()
    live = ConsoleBar(log)
    live.line("step 1")
    live.line("step 2")
    live.clear()
    assert log.getvalue() == "step 1\nstep 2\n"
