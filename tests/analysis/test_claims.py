"""analysis.claims: the GR interference ratio, the DML danger ratio and the ablation rows, from diagnostics."""

import json

import polars as pl
import pytest

from analysis.claims import AblationRun, claims_markdown, gr_ratio, runs_from_results
from janus.errors import UserError


def run(flags, seed, interference, danger, acc=50.0, bwt=-10.0):
    first = {"interference": {}, "danger": None}
    later = {"interference": {"blocks.0.k": interference, "blocks.0.v": interference,
                              "blocks.1.k": 2 * interference, "blocks.1.v": 2 * interference}, "danger": danger}
    return AblationRun(flags, seed, acc, bwt, [first, later, later])


def test_ratios_compare_the_full_method_with_the_row_missing_one_component():
    runs = [run((True, True, True), s, 0.01, 0.40) for s in range(2)]
    runs += [run((True, False, True), s, 0.04, 0.42) for s in range(2)]
    runs += [run((True, True, False), s, 0.01, 0.50) for s in range(2)]
    blocks, on, off = gr_ratio(runs)
    assert blocks == {0: (pytest.approx(0.01), pytest.approx(0.04)), 1: (pytest.approx(0.02), pytest.approx(0.08))}
    assert on == pytest.approx(0.015) and off == pytest.approx(0.06)
    text = claims_markdown(runs)
    assert "GR interference ratio: 0.25" in text and "DML danger ratio: 0.800" in text
    assert "| ⑦ | ✓ | ✓ | ✓ | 2 | 50.0 ± 0.0 |" in text and "| ⑤ |" in text and "| ① |" not in text


def test_missing_rows_are_named_and_no_runs_is_an_error():
    text = claims_markdown([run((True, True, True), 0, 0.01, 0.4)])
    assert "needs rows ⑦ (OE+GR+DML) and ⑥" in text and "needs rows ⑦ (OE+GR+DML) and ⑤" in text
    with pytest.raises(UserError, match="--ablation on"):
        claims_markdown([])


def test_runs_from_a_results_frame_read_the_flags_and_diagnostics():
    diagnostics = json.dumps([{}, {"interference": {"blocks.2.k": 0.5}, "danger": 0.3}])
    frame = pl.DataFrame({"method": ["janus", "janus", "seq-lora"], "status": ["completed"] * 3,
                          "cfg.method.oe": [True, False, None], "cfg.method.gr": [None, False, None],
                          "cfg.method.dml": [True, True, None], "seed": [0, 1, 0], "acc": [60.0, 40.0, 30.0],
                          "bwt": [-5.0, -20.0, -30.0], "diagnostics_json": [diagnostics] * 3})
    runs = runs_from_results(frame)
    assert [r.flags for r in runs] == [(True, True, True), (False, False, True)]
    assert runs[0].interference() == {"blocks.2.k": 0.5} and runs[1].danger() == 0.3
    # the `gr` sub-config's column (cfg.method.gr.enabled), as studies record it now
    frame = frame.rename({"cfg.method.gr": "cfg.method.gr.enabled"})
    assert [r.flags for r in runs_from_results(frame)] == [(True, True, True), (False, False, True)]
