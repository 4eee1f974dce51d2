"""The method's claims, measured from the runs' own diagnostics: what GR does to interference, what DML does
to the danger score, and the ablation rows ①-⑦ (Janus-LoRA with OE, GR and DML each on or off).

* interference (per adapted K/V slice, after each task t ≥ 2): ‖ΔW_t X_past‖_F / ‖X_past‖_F, ΔW_t the
  task's composite LoRA update and X_past the inputs of earlier tasks (through their second moment).
* danger (after each task t ≥ 2): the mean over the task's last-epoch features of the cosine to the nearest
  old-class prototype (lower: new features stay away from old classes).

"With GR vs without" compares the full method ⑦ (OE+GR+DML) with ⑥ (OE+DML), "with DML vs without" compares
⑦ with ⑤ (OE+GR): the same runs but for the one component. Values are means over tasks ≥ 2, slices and seeds.

    python -m analysis.claims --study studies/<name>     # a study that ran --ablation on
    python benchmarks/claims.py                          # the same, from direct runs (no Ray)
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from analysis.aggregate import with_flags
from janus.errors import UserError

# (OE, GR, DML) of the ablation rows ①-⑦ (the paper's order).
ROWS = [(False, False, False), (False, False, True), (True, False, False), (False, True, False),
        (True, True, False), (True, False, True), (True, True, True)]
CIRCLED = "①②③④⑤⑥⑦"
FULL, NO_GR, NO_DML = (True, True, True), (True, False, True), (True, True, False)


@dataclass
class AblationRun:
    """One Janus-LoRA run: its flags, seed, summary metrics and per-task diagnostics."""

    flags: tuple[bool, bool, bool]
    seed: int
    acc: float
    bwt: float
    diagnostics: list[dict] = field(default_factory=list)

    def interference(self) -> dict[str, float]:
        """Mean over tasks ≥ 2 of each slice's interference ("blocks.3.k" -> value)."""
        values: dict[str, list[float]] = {}
        for task in self.diagnostics[1:]:
            for key, value in (task.get("interference") or {}).items():
                if _finite(value):
                    values.setdefault(key, []).append(float(value))
        return {key: statistics.fmean(v) for key, v in values.items()}

    def danger(self) -> float:
        values = [float(t["danger"]) for t in self.diagnostics[1:] if _finite(t.get("danger"))]
        return statistics.fmean(values) if values else math.nan


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def runs_from_results(frame: pl.DataFrame) -> list[AblationRun]:
    """The completed Janus-LoRA trials of a study's results frame (the flags as `analysis.aggregate` reads
    them: the recorded columns, else the method's defaults)."""
    janus = frame.filter((pl.col("method") == "janus") & (pl.col("status") == "completed"))
    runs = []
    for row in with_flags(janus).iter_rows(named=True):
        flags = (bool(row["oe"]), bool(row["gr"]), bool(row["dml"]))
        runs.append(AblationRun(flags, int(row["seed"]), float(row["acc"]), float(row["bwt"]),
                                json.loads(row.get("diagnostics_json") or "[]")))
    return runs


def _mean_std(values: list[float], digits: int = 1) -> str:
    values = [v for v in values if _finite(v)]
    if not values:
        return "-"
    mean, std = statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if _finite(std) else f"{mean:.{digits}f}"


def _mean(values: list[float]) -> float:
    values = [v for v in values if _finite(v)]
    return statistics.fmean(values) if values else math.nan


def _overall(run: AblationRun) -> float:
    return _mean(list(run.interference().values()))


def ablation_markdown(runs: list[AblationRun]) -> str:
    """The ablation rows present in `runs`: ACC, BWT, interference and danger, mean ± std over seeds."""
    lines = ["| row | OE | GR | DML | seeds | ACC | BWT | interference | danger |",
             "|---|---|---|---|---|---|---|---|---|"]
    for index, flags in enumerate(ROWS):
        group = [r for r in runs if r.flags == flags]
        if not group:
            continue
        marks = " | ".join("✓" if on else "" for on in flags)
        lines.append(f"| {CIRCLED[index]} | {marks} | {len(group)} | {_mean_std([r.acc for r in group])} | "
                     f"{_mean_std([r.bwt for r in group])} | {_mean_std([_overall(r) for r in group], 3)} | "
                     f"{_mean_std([r.danger() for r in group], 3)} |")
    return "\n".join(lines)


def block_of(key: str) -> int:
    return int(re.search(r"\d+", key).group())


def gr_ratio(runs: list[AblationRun]) -> tuple[dict[int, tuple[float, float]], float, float] | None:
    """Interference per block with GR (⑦) and without (⑥), and overall; None unless both rows ran."""
    with_gr = [r for r in runs if r.flags == FULL]
    without = [r for r in runs if r.flags == NO_GR]
    if not with_gr or not without:
        return None

    def per_block(group: list[AblationRun]) -> dict[int, float]:
        values: dict[int, list[float]] = {}
        for run in group:
            for key, value in run.interference().items():
                values.setdefault(block_of(key), []).append(value)
        return {block: _mean(v) for block, v in values.items()}

    on, off = per_block(with_gr), per_block(without)
    blocks = {b: (on[b], off[b]) for b in sorted(set(on) & set(off))}
    return blocks, _mean([_overall(r) for r in with_gr]), _mean([_overall(r) for r in without])


def claims_markdown(runs: list[AblationRun]) -> str:
    """The claims section: the GR interference ratio (per block and overall), the DML danger ratio and the
    ablation table. Rows that did not run are left out; the text says which comparisons are missing."""
    if not runs:
        raise UserError("no completed Janus-LoRA runs to measure the claims on; run the study with --ablation on")
    seeds = len({r.seed for r in runs})
    parts = [f"### Claims, from the runs' diagnostics (Janus-LoRA, {seeds} seeds)"]
    gr = gr_ratio(runs)
    if gr is None:
        parts.append("GR: needs rows ⑦ (OE+GR+DML) and ⑥ (OE+DML).")
    else:
        blocks, on, off = gr
        rows = [f"| {b} | {a:.4f} | {c:.4f} | {a / c:.2f} |" for b, (a, c) in blocks.items() if c > 0]
        parts.append("Interference ‖ΔW X_past‖/‖X_past‖ with GR (⑦) vs without (⑥), mean over tasks ≥ 2, K and V:\n\n"
                     "| block | with GR | without GR | ratio |\n|---|---|---|---|\n" + "\n".join(rows)
                     + f"\n\n**GR interference ratio: {on / off:.2f}** ({on:.4f} / {off:.4f})")
    full = [r.danger() for r in runs if r.flags == FULL]
    no_dml = [r.danger() for r in runs if r.flags == NO_DML]
    if full and no_dml and _mean(no_dml) > 0:
        parts.append(f"**DML danger ratio: {_mean(full) / _mean(no_dml):.3f}** (danger with DML (⑦) "
                     f"{_mean(full):.3f} vs without (⑤) {_mean(no_dml):.3f}; lower is safer)")
    else:
        parts.append("DML: needs rows ⑦ (OE+GR+DML) and ⑤ (OE+GR).")
    parts.append("Ablation (ACC, BWT in percent; interference and danger as above):\n\n" + ablation_markdown(runs))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.claims", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", required=True, help="a study folder (holds results.parquet)")
    args = parser.parse_args(argv)
    try:
        from analysis.load import load_study

        print(claims_markdown(runs_from_results(load_study(Path(args.study)))))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
