"""The Janus-LoRA paper's reported numbers beside ours: paper, ours and the difference, cell by cell.

`paper_numbers.csv` (in this package) holds every number of docs/method.md §10 once per paper table, keyed
like our cells (method, gr/oe/dml flags, dataset, tasks, backbone, metric), with a `source` naming the
paper's table or figure. For the OE-vs-GPM table `method` names the subspace estimator (`oe`, `gpm`).
Each layout reads the paper tables it mirrors (`PAPER_TABLES`); where the paper prints one cell twice with
different values (LoRA-GPM in the ImageNet-R table and in Fig. 6), each layout takes its own.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import polars as pl

from analysis.layouts import KEY_COLUMNS

PAPER_FILE = Path(__file__).with_name("paper_numbers.csv")
PAPER_TABLES = {"main": ("main",), "imagenet_r": ("main",), "ablation": ("ablation",),
                "backbones": ("backbones", "main"), "gr_plugin": ("gr_plugin",), "oe_vs_gpm": ("oe_vs_gpm",)}
_DTYPES = {"table": pl.String, "method": pl.String, "gr": pl.Boolean, "oe": pl.Boolean, "dml": pl.Boolean,
           "dataset": pl.String, "tasks": pl.Int64, "backbone": pl.String, "metric": pl.String,
           "mean": pl.Float64, "std": pl.Float64, "source": pl.String}


@cache
def paper_numbers() -> pl.DataFrame:
    """The paper's numbers: one row per (table, cell, metric), percent."""
    return pl.read_csv(PAPER_FILE, schema=_DTYPES)


def _for_layout(layout: str) -> pl.DataFrame:
    tables = PAPER_TABLES.get(layout, ())
    numbers = paper_numbers().filter(pl.col("table").is_in(tables))
    preference = pl.col("table").replace_strict(tables, list(range(len(tables))), return_dtype=pl.Int64)
    return (numbers.sort(preference, maintain_order=True).unique(KEY_COLUMNS, keep="first", maintain_order=True)
            .select(*KEY_COLUMNS, pl.col("mean").alias("paper_mean"), pl.col("std").alias("paper_std"),
                    pl.col("source").alias("paper_source")))


def with_paper(cells: pl.DataFrame, layout: str) -> pl.DataFrame:
    """Add paper_mean, paper_std, paper_source (null where the paper has no such cell)."""
    if cells.height == 0:
        return cells
    return cells.join(_for_layout(layout), on=list(KEY_COLUMNS), how="left", nulls_equal=True,
                      maintain_order="left")


def comparison(cells: pl.DataFrame, column: str = "Benchmark") -> pl.DataFrame:
    """Cells for a paper-vs-ours table: one row per (row, group) cell both have, its group label in the stub
    column `column`; per metric the sub-columns Paper, Ours and Δ = ours − paper."""
    both = cells.filter(pl.col("paper_mean").is_not_null(), pl.col("mean").is_not_null())
    if both.height == 0:
        return pl.DataFrame()
    pairs = both.select(
        pl.col("row").alias("row_label"), "group", pl.col("sub").alias("metric_label"),
        (pl.col("row_order") * 10_000 + pl.col("group_order")).alias("row_order"),
        pl.col("sub_order").alias("group_order"), "mean", "std", "n", "n_excluded", "paper_mean", "paper_std",
        "paper_source")
    parts = [
        pairs.with_columns(pl.lit("Paper").alias("sub"), pl.lit(0).alias("sub_order"),
                           pl.col("paper_mean").alias("mean"), pl.col("paper_std").alias("std"),
                           pl.lit(None, pl.Int64).alias("n"), pl.lit(False).alias("signed")),
        pairs.with_columns(pl.lit("Ours").alias("sub"), pl.lit(1).alias("sub_order"), pl.lit(False).alias("signed")),
        pairs.with_columns(pl.lit("Δ").alias("sub"), pl.lit(2).alias("sub_order"),
                           (pl.col("mean") - pl.col("paper_mean")).alias("mean"), pl.lit(None, pl.Float64).alias("std"),
                           pl.lit(None, pl.Int64).alias("n"), pl.lit(True).alias("signed")),
    ]
    return (pl.concat(parts)
            .rename({"group": column})
            .with_columns(pl.col("row_label").alias("row"), pl.col("metric_label").alias("group"))
            .select("row", "row_order", column, "group", "group_order", "sub", "sub_order", "mean", "std",
                    "n", "n_excluded", "signed", "paper_source")
            .sort("row_order", "group_order", "sub_order"))
