"""The table printed at the end of a study: mean ± std over seeds of the completed trials (Polars).

One row per data set x backbone x tasks x stage x method, for the grid and replicate stages. The rows are
`analysis.aggregate`'s (the same completion rule, flags and variants as the paper tables), labelled and
ordered by `analysis.layouts.method_row` (the same display names and row order as the tables and figures).
std is the sample standard deviation (ddof=1; "n/a" with one seed); `failed` counts the trials excluded.
Search stages list their best configs instead. The analysis package (`analysis/`) makes the paper's tables.
"""

from __future__ import annotations

import polars as pl

from analysis.aggregate import GROUP_KEYS, is_completed, with_keys
from analysis.layouts import method_row

TABLE_METRICS = {"acc": "ACC", "maa": "MAA", "bwt": "BWT", "fgt": "FGT", "val_acc_all": "val ACC_all"}
GROUP = ["dataset", "backbone", "tasks", "stage", "method"]
SEARCH_TOP = 3


def mean_std_table(frame: pl.DataFrame) -> pl.DataFrame:
    """mean ± std per group of the completed grid/replicate trials, with the count of failed ones."""
    rows = frame.filter(pl.col("stage") != "search")
    columns = [*GROUP[:-1], "method", "n", "failed", *TABLE_METRICS.values()]
    if rows.height == 0:
        return pl.DataFrame(schema={c: pl.String for c in columns})
    rows = with_keys(rows.with_columns(*(pl.lit(None, pl.Float64).alias(n) for n in TABLE_METRICS
                                         if n not in rows.columns)))
    done = is_completed()
    aggregates = [done.sum().alias("n"), (~done).sum().alias("failed")]
    for name in TABLE_METRICS:
        aggregates += [pl.col(name).filter(done).mean().alias(f"{name}_mean"),
                       pl.col(name).filter(done).std().alias(f"{name}_std")]
    keys = ["dataset", "backbone", "tasks", "stage", *(k for k in GROUP_KEYS if k not in GROUP[:-1])]
    table = rows.group_by(keys, maintain_order=True).agg(aggregates)
    labelled = [(*method_row(row), row) for row in table.iter_rows(named=True)]
    labelled.sort(key=lambda item: (item[2]["dataset"], item[2]["backbone"], item[2]["tasks"], item[2]["stage"],
                                    item[1]))
    table = pl.DataFrame([{**row, "method": label} for label, _, row in labelled])
    cells = [pl.struct(f"{n}_mean", f"{n}_std").map_elements(_mean_std, return_dtype=pl.String).alias(label)
             for n, label in TABLE_METRICS.items()]
    return table.select(*GROUP[:-1], "method", "n", "failed", *cells).rename({"tasks": "T"})


def _mean_std(cell: dict) -> str:
    mean, std = cell.values()
    if mean is None:
        return "-"
    return f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f} ± n/a"


def best_searched(frame: pl.DataFrame, objective: str, searched: dict[str, tuple[str, ...]]) -> pl.DataFrame:
    """The best completed configs of each search: the objective and the searched values."""
    rows = frame.filter(pl.col("stage") == "search", pl.col("status") == "completed")
    ranked = rows.sort([objective, "trial_id"], descending=[True, False]).group_by(GROUP, maintain_order=True)
    best = ranked.head(SEARCH_TOP)
    values = [", ".join(_value(row, key) for key in searched.get(row["method"], ()))
              for row in best.iter_rows(named=True)]
    return best.select(*GROUP[:2], "method", pl.col(objective).round(2), "trial_id").with_columns(
        pl.Series("searched", values, dtype=pl.String))


def _value(row: dict, key: str) -> str:
    value = row.get(f"cfg.{key}")
    return f"{key.split('.')[-1]}={value:.3g}" if isinstance(value, float) else f"{key.split('.')[-1]}={value}"


def render(frame: pl.DataFrame, objective: str = "val_acc_all", searched: dict | None = None) -> str:
    """Markdown: the mean ± std table, then the best searched configs (`searched`: method -> its searched
    keys) if the study searched."""
    parts = []
    with pl.Config(tbl_formatting="MARKDOWN", tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True,
                   fmt_str_lengths=80, tbl_rows=200, tbl_cols=30, tbl_width_chars=250):
        table = mean_std_table(frame)
        if table.height:
            parts.append("Mean ± std over seeds (percent; completed trials)\n\n" + str(table))
        best = best_searched(frame, objective, searched or {})
        if best.height:
            parts.append(f"Best searched configs by {objective} (validation split)\n\n" + str(best))
    return "\n\n".join(parts) or "no finished trials"


def parent_table(frame: pl.DataFrame) -> dict[str, list]:
    """The mean ± std table as columns, for `mlflow.log_table` on the study's parent run."""
    table = mean_std_table(frame)
    return {name: [str(v) if v is not None else "" for v in table[name]] for name in table.columns}
