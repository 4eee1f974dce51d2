"""Paper tables from study results: mean ± std over seeds in the Janus-LoRA paper's layouts.

    python -m analysis.tables --study NAME                    # every table, Markdown, printed
    python -m analysis.tables --study NAME --paper            # + paper vs ours (paper, ours, Δ)
    python -m analysis.tables --study NAME --format tex --table main
    python -m analysis.tables --study A --study B --out DIR   # pool two studies; write md, tex, csv, html

Tables (each only when the results have what it needs): main (methods x benchmarks: ACC, MAA, BWT),
imagenet_r (T = 5/10/20), ablation (Janus-LoRA with OE/GR/DML on and off, check marks), backbones
(Sup-21K, DINO, SAM), gr_plugin (method vs method+GR), oe_vs_gpm (OE alone vs LoRA-GPM; the paper's
Table 5 is single-epoch). Numbers: mean and sample standard deviation (ddof=1) over the completed seeds;
failed or unfinished trials are left out and counted in the caption; the best value per column is bold.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from analysis import layouts
from analysis.aggregate import aggregate, summarize, table_rows
from analysis.format import FORMATS, Table, common_seeds, to_markdown
from analysis.paper import PAPER_FILE, comparison, with_paper
from janus.errors import UserError


@dataclass(frozen=True)
class Layout:
    name: str
    title: str
    build: Callable[[pl.DataFrame], pl.DataFrame]
    stub: tuple[str, ...]
    column: str  # what a column group is, for the paper comparison's stub
    best_over: tuple[str, ...] = ("group", "sub")  # bold the best of each column, or of each row and metric


LAYOUTS = (
    Layout("main", "Main results (ACC / MAA / BWT, %)", layouts.main_table, ("Method",), "Benchmark"),
    Layout("imagenet_r", "ImageNet-R with 5, 10 and 20 tasks", layouts.imagenet_r_table, ("Method",), "Tasks"),
    Layout("ablation", "Ablation of OE, GR and DML (Janus-LoRA)", layouts.ablation_table,
           ("", "OE", "GR", "DML"), "Benchmark"),
    Layout("backbones", "Other pre-trained backbones", layouts.backbone_table, ("Method",), "Backbone"),
    Layout("gr_plugin", "GR as a plug-in", layouts.gr_plugin_table, ("Method",), "GR", ("row_order", "sub")),
    Layout("oe_vs_gpm", "OE vs GPM (paper: a single epoch per task)", layouts.oe_vs_gpm_table,
           ("Benchmark",), "Estimator", ("row_order", "sub")),
)
TABLE_NAMES = tuple(layout.name for layout in LAYOUTS)


def mark_best(cells: pl.DataFrame, over: tuple[str, ...] = ("group", "sub")) -> pl.DataFrame:
    """bold = the highest mean at the printed precision (ties all bold) among the cells that share `over`
    (a column by default; ("row_order", "sub") compares within a row), if there are two or more."""
    shown = pl.col("mean").round(2)
    best = (shown == shown.max().over(over)) & (pl.col("mean").count().over(over) >= 2)
    return cells.with_columns(best.fill_null(False).alias("bold"))


def _seeds_note(cells: pl.DataFrame) -> str:
    seeds = common_seeds(cells)
    if seeds is None or seeds <= 1:
        return "One seed per cell (no standard deviation)."
    shown = cells.filter(pl.col("mean").is_not_null())
    marked = "; a cell marked (n=k) has k" if (shown["n"] != seeds).any() else ""
    return f"Mean ± sample standard deviation (ddof=1) over {seeds} seeds{marked}."


def _exclusion_note(cells: pl.DataFrame) -> str:
    excluded = (cells.filter(pl.col("n_excluded") > 0).unique(["row_order", "group"])
                .sort("row_order", "group_order"))
    if excluded.height == 0:
        return ""
    total = int(excluded["n_excluded"].sum())
    parts = "; ".join(f"{r['row']}, {r['group']}: {r['n_excluded']}" for r in excluded.iter_rows(named=True))
    return f"Excluded: {total} failed or unfinished trial{'s' if total != 1 else ''} ({parts})."


def describe(cells: pl.DataFrame, note: str = "", best: str = "column") -> tuple[str, ...]:
    """Caption sentences: seeds and ddof, best in bold, exclusions, and the study's note."""
    sentences = [_seeds_note(cells), f"Best per {best} in bold." if cells["bold"].any() else "",
                 _exclusion_note(cells), note]
    return tuple(s for s in sentences if s)


def _paper_table(layout: Layout, cells: pl.DataFrame) -> Table | None:
    compared = comparison(cells, layout.column)
    if compared.height == 0:
        return None
    ours = compared.filter(pl.col("sub") == "Ours")
    notes = (f"Paper: as reported in the Janus-LoRA paper (sources in analysis/{PAPER_FILE.name}).",
             f"Ours: {_seeds_note(ours)}", "Δ = Ours − Paper.")
    stub = (layout.stub[0] or "Variant", layout.column)
    return Table(f"{layout.name}_vs_paper", f"{layout.title}: paper vs ours", compared, stub, notes)


NO_PAPER_NUMBERS = ("Paper numbers not available for this benchmark: the Janus-LoRA paper reports none of "
                    "these cells, so --paper adds no comparison.")


def classifier_note(results: pl.DataFrame) -> str:
    """The caption sentence that says how the trials predicted (eval.classifier; absent = per-task heads)."""
    from janus.classifier import DESCRIPTIONS

    column = "cfg.eval.classifier"
    used = sorted(set(results[column].fill_null("heads").to_list())) if column in results.columns else ["heads"]
    if not results.height:
        return ""
    return "Prediction: " + " / ".join(DESCRIPTIONS.get(u, u) for u in used) + "."


def build_tables(results: pl.DataFrame, paper: bool = False, names=TABLE_NAMES) -> list[Table]:
    """Every applicable table of `names` for these trial rows; with `paper`, each followed by its
    paper-vs-ours comparison where the paper reports some of its cells."""
    agg, note = summarize(results)
    note = " ".join(s for s in (classifier_note(results), note) if s)
    tables = []
    for layout in (layout for layout in LAYOUTS if layout.name in names):
        cells = layout.build(agg)
        if cells.height == 0:
            continue
        cells = mark_best(cells, layout.best_over)
        cells = with_paper(cells, layout.name) if paper else cells
        compared = _paper_table(layout, cells) if paper else None
        notes = describe(cells, note, "column" if layout.best_over[0] == "group" else "row and metric")
        if paper and compared is None:
            notes = (*notes, NO_PAPER_NUMBERS)
        tables.append(Table(layout.name, layout.title, cells, layout.stub, notes))
        tables += [compared] if compared else []
    return tables


def write_tables(tables: list[Table], out_dir: str | Path) -> list[Path]:
    """Write each table as <name>.md, .tex, .csv and .html into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for table in tables:
        for extension, render in FORMATS.items():
            path = out_dir / f"{table.name}.{extension}"
            path.write_text(render(table))
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    from analysis.cli import study_parser
    from analysis.load import load_results

    parser = study_parser("python -m analysis.tables", __doc__)
    parser.add_argument("--format", choices=tuple(FORMATS), default="md", help="what to print (default md)")
    parser.add_argument("--table", action="append", choices=TABLE_NAMES, help="only these tables (repeatable)")
    parser.add_argument("--paper", action="store_true", help="add the paper's numbers: paper, ours, Δ")
    parser.add_argument("--out", metavar="DIR", help="also write every table as md, tex, csv and html here")
    args = parser.parse_args(argv)
    tables = build_tables(load_results(args.study, args.studies_dir), args.paper, args.table or TABLE_NAMES)
    if not tables:
        raise UserError(f"nothing to tabulate for {', '.join(args.table or ['any table'])}: no completed trial "
                        f"has what the table needs (see python -m analysis.tables --help)")
    print("\n".join(FORMATS[args.format](table) for table in tables), end="")
    if args.out:
        paths = write_tables(tables, args.out)
        print(f"\nwrote {len(paths)} files to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from analysis.cli import run

    sys.exit(run(main))


__all__ = ["LAYOUTS", "TABLE_NAMES", "aggregate", "build_tables", "describe", "mark_best", "summarize",
           "table_rows", "to_markdown", "write_tables"]
