"""The Janus-LoRA paper's table layouts, as pure functions: aggregate frame -> tidy cells frame.

Every layout returns one row per table cell with the columns of `CELL_COLUMNS`: the row label (`row`, and
stub columns such as the ablation check marks), the column-group label (`group`, a spanner such as
"ImageNet-R (T=10)"), the sub-column (`sub`: ACC, MAA or BWT), the numbers (`mean`, `std`, `n`,
`n_excluded`), sort orders, and the canonical keys (method, gr, oe, dml, dataset, tasks, backbone, metric)
that `analysis.paper` joins the paper's numbers on. A layout with nothing to show (e.g. the backbone table
of a one-backbone study) returns an empty frame.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from analysis import names

KEY_COLUMNS = ("method", "gr", "oe", "dml", "dataset", "tasks", "backbone", "metric")
CELL_SCHEMA = {"row": pl.String, "row_order": pl.Int64, "group": pl.String, "group_order": pl.Int64,
               "sub": pl.String, "sub_order": pl.Int64, "mean": pl.Float64, "std": pl.Float64, "n": pl.Int64,
               "n_excluded": pl.Int64, "method": pl.String, "gr": pl.Boolean, "oe": pl.Boolean,
               "dml": pl.Boolean, "dataset": pl.String, "tasks": pl.Int64, "backbone": pl.String,
               "metric": pl.String}
CELL_COLUMNS = tuple(CELL_SCHEMA)
CHECK = "✓"
# The paper's ablation rows ①-⑦ as (OE, GR, DML); ⑧ is the combination the paper does not report.
ABLATION = [(False, False, False), (False, False, True), (True, False, False), (False, True, False),
            (True, True, False), (True, False, True), (True, True, True), (False, True, True)]
CIRCLED = "①②③④⑤⑥⑦⑧"
METRIC_ORDER = list(names.METRICS)


def _with_variant(label: str, row: dict) -> str:
    return f"{label} [{row['variant']}]" if row.get("variant") else label


def method_row(row: dict) -> tuple[str, tuple]:
    """Row label ("LoRA-GPM+GR", "Janus-LoRA (OE+GR)") and its paper-order sort key."""
    label = names.method_label(row["method"], row["gr"], row["oe"], row["dml"])
    flags = (row["oe"], row["gr"], row["dml"])
    rank = ABLATION.index(flags) if flags in ABLATION else -1
    plugin_gr = bool(row["gr"]) and row["method"] != "janus"  # "X+GR" right after X; Janus variants ①..⑦
    return _with_variant(label, row), (names.method_order(row["method"]), plugin_gr, rank,
                                       row["epochs"] or 0, row["variant"])


def benchmark_group(agg: pl.DataFrame) -> Callable[[dict], tuple[str, tuple]]:
    """Column group per benchmark; the backbone is named only when the frame has more than one."""
    several = agg["backbone"].n_unique() > 1

    def group(row: dict) -> tuple[str, tuple]:
        label = names.benchmark_name(row["dataset"], row["tasks"])
        if several:
            label += f", {names.backbone_name(row['backbone'])}"
        return label, (names.backbone_order(row["backbone"]), names.dataset_order(row["dataset"]), row["tasks"])

    return group


def _ranks(keys: list[tuple]) -> dict:
    return {key: i for i, key in enumerate(sorted(set(keys), key=lambda k: (k[1], k[0])))}


def cells(agg: pl.DataFrame, row_of, group_of, stub=lambda row: {}) -> pl.DataFrame:
    """Tidy cells from an aggregate: row_of/group_of map an aggregate row to (label, sort key)."""
    if agg.height == 0:
        return pl.DataFrame()
    records = []
    for row in agg.iter_rows(named=True):
        (row_label, row_key), (group_label, group_key) = row_of(row), group_of(row)
        records.append({**row, **stub(row), "row": row_label, "_rk": (row_label, row_key), "group": group_label,
                        "_gk": (group_label, group_key), "sub": names.METRICS[row["metric"]],
                        "sub_order": METRIC_ORDER.index(row["metric"])})
    row_rank = _ranks([r["_rk"] for r in records])
    group_rank = _ranks([r["_gk"] for r in records])
    for record in records:
        record["row_order"], record["group_order"] = row_rank[record.pop("_rk")], group_rank[record.pop("_gk")]
    frame = pl.DataFrame(records, infer_schema_length=None)
    stub_columns = list(stub(agg.row(0, named=True)))
    return frame.select(*(pl.col(name).cast(dtype) for name, dtype in CELL_SCHEMA.items()), *stub_columns)


def main_table(agg: pl.DataFrame) -> pl.DataFrame:
    """Methods x benchmarks (x backbones), each with ACC, MAA, BWT: the paper's main results table."""
    return cells(agg, method_row, benchmark_group(agg))


def imagenet_r_table(agg: pl.DataFrame) -> pl.DataFrame:
    """ImageNet-R with T = 5, 10, 20 side by side; empty unless the study has two task counts or more."""
    subset = agg.filter(pl.col("dataset") == "imagenet-r")
    if subset["tasks"].n_unique() < 2:
        return pl.DataFrame()
    several = subset["backbone"].n_unique() > 1

    def group(row: dict) -> tuple[str, tuple]:
        label = f"T={row['tasks']}" + (f", {names.backbone_name(row['backbone'])}" if several else "")
        return label, (names.backbone_order(row["backbone"]), row["tasks"])

    return cells(subset, method_row, group)


def ablation_table(agg: pl.DataFrame) -> pl.DataFrame:
    """Janus-LoRA with OE / GR / DML switched on and off: rows ①-⑦ in the paper's order, check marks."""
    subset = agg.filter(pl.col("method") == "janus")
    if subset.select("oe", "gr", "dml").n_unique() < 2:
        return pl.DataFrame()

    def row_of(row: dict) -> tuple[str, tuple]:
        index = ABLATION.index((bool(row["oe"]), bool(row["gr"]), bool(row["dml"])))
        return _with_variant(CIRCLED[index], row), (index, row["epochs"] or 0, row["variant"])

    def stub(row: dict) -> dict:
        return {part: CHECK if row[part.lower()] else "" for part in ("OE", "GR", "DML")}

    return cells(subset, row_of, benchmark_group(subset), stub)


def backbone_table(agg: pl.DataFrame) -> pl.DataFrame:
    """Methods x backbones (Sup-21K, DINO, SAM); empty unless the study has two backbones or more."""
    if agg["backbone"].n_unique() < 2:
        return pl.DataFrame()
    several = agg.select("dataset", "tasks").n_unique() > 1

    def group(row: dict) -> tuple[str, tuple]:
        label = names.backbone_name(row["backbone"])
        if several:
            label += f", {names.benchmark_name(row['dataset'], row['tasks'])}"
        return label, (names.dataset_order(row["dataset"]), row["tasks"], names.backbone_order(row["backbone"]))

    return cells(agg, method_row, group)


def gr_plugin_table(agg: pl.DataFrame) -> pl.DataFrame:
    """GR as a plug-in: each method that ran with and without GR, side by side (paper Fig. 6)."""
    both = (agg.filter(pl.col("method") != "janus", pl.col("gr").is_not_null())
            .group_by("method").agg(pl.col("gr").n_unique().alias("k")).filter(pl.col("k") == 2)["method"])
    subset = agg.filter(pl.col("method").is_in(both.implode()), pl.col("method") != "janus")
    if subset.height == 0:
        return pl.DataFrame()
    benchmark = benchmark_group(subset)
    several = subset.select("dataset", "tasks", "backbone").n_unique() > 1

    def row_of(row: dict) -> tuple[str, tuple]:
        return _with_variant(names.method_name(row["method"]), row), (names.method_order(row["method"]),
                                                                      row["epochs"] or 0, row["variant"])

    def group(row: dict) -> tuple[str, tuple]:
        label, key = benchmark(row)
        part = "with GR" if row["gr"] else "without GR"
        return (f"{label}, {part}" if several else part), (key, bool(row["gr"]))

    return cells(subset, row_of, group)


def _estimator(agg: pl.DataFrame) -> pl.Expr:
    """OE = Janus with OE alone (ablation ③); GPM = LoRA-GPM without GR: the same projection, other estimate."""
    janus_oe = (pl.col("method") == "janus") & pl.col("oe") & ~pl.col("gr") & ~pl.col("dml")
    gpm = (pl.col("method") == "lora-gpm") & ~pl.col("gr")
    return pl.when(janus_oe).then(pl.lit("oe")).when(gpm).then(pl.lit("gpm")).otherwise(None)


def oe_vs_gpm_table(agg: pl.DataFrame) -> pl.DataFrame:
    """Benchmarks x {GPM, OE} (paper Table 5, single epoch); empty unless both estimators ran at the same
    energy rule (criterion and threshold), so that the table compares the estimators and nothing else."""
    subset = agg.with_columns(_estimator(agg).alias("estimator")).filter(pl.col("estimator").is_not_null())
    pair = ["dataset", "tasks", "backbone", "epochs", "rule"]
    both = subset.group_by(pair).agg(pl.col("estimator").n_unique().alias("k")).filter(pl.col("k") == 2)
    subset = subset.join(both.select(pair), on=pair, how="semi", nulls_equal=True)
    if subset.height == 0:
        return pl.DataFrame()
    # Paper numbers are single-epoch: only a single-epoch cell is keyed for the comparison.
    subset = subset.with_columns(
        pl.when(pl.col("epochs") == 1).then(pl.col("estimator")).alias("method"),
        pl.lit(None, pl.Boolean).alias("gr"), pl.lit(None, pl.Boolean).alias("oe"),
        pl.lit(None, pl.Boolean).alias("dml"))
    several = subset["backbone"].n_unique() > 1

    def row_of(row: dict) -> tuple[str, tuple]:
        label = names.benchmark_name(row["dataset"], row["tasks"])
        label += f", {names.backbone_name(row['backbone'])}" if several else ""
        label += f", {row['epochs']} epochs" if row["epochs"] not in (1, None) else ""
        label += f", {row['rule']}"
        key = (names.backbone_order(row["backbone"]), names.dataset_order(row["dataset"]), row["tasks"],
               row["epochs"] or 0, row["rule"])
        return label, key

    def group(row: dict) -> tuple[str, tuple]:
        return names.ESTIMATORS[row["estimator"]], (row["estimator"] == "oe",)

    return cells(subset, row_of, group)
