"""The benchmark scripts still run against the current code (tiny sizes; the numbers themselves are for the
README and the notes, never asserted as timings)."""

import importlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))


def numbers(line: str) -> list[float]:
    return [float(word) for word in line.split() if word.replace(".", "", 1).isdigit()]


def test_step_overhead_prints_a_positive_ratio_and_oe_share(capsys):
    importlib.import_module("step_overhead").main(["--backbones", "test", "--steps", "2", "--warmup", "1",
                                                  "--oe-precision", "float32"])
    row = capsys.readouterr().out.strip().splitlines()[-1]
    lora_ms, janus_ms, ratio, oe_s, oe_share = numbers(row)
    assert row.startswith("test") and ratio == pytest.approx(janus_ms / lora_ms, rel=0.05) and oe_s > 0


def test_gr_ops_counts_ops_inside_the_hooks(capsys):
    assert importlib.import_module("gr_ops").main(["--backbones", "test"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()[-3:]
    (base, zero), (meter_on, hooks_on, _), (meter_off, hooks_off, _) = (numbers(r) for r in rows)
    assert zero == 0 and base > 0 and meter_on > meter_off > base and hooks_on > hooks_off > 0


def test_packing_runs_concurrent_trials(capsys):
    assert importlib.import_module("packing").main(["--trials", "1,2", "--steps", "2", "--warmup", "1",
                                                    "--batch", "4"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()[-2:]
    (one, n1, ratio1, slow1), (two, n2, ratio2, slow2) = (numbers(r) for r in rows)
    assert (one, two, ratio1) == (1, 2, 1.0) and n2 > 0 and ratio2 == pytest.approx(n2 / n1, rel=0.03)  # 1-decimal rows
