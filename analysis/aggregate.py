"""Pure frame -> frame steps from trial rows to mean ± std over seeds (the numbers behind every table).

* `table_rows`: the rows a table reports (grid and replicate stages; a search-only study reports its best
  trial per method by `val_acc_all`, a validation objective, never the test split).
* `with_keys`: adds the grouping keys `oe`, `gr`, `dml` (the ablation flags), `epochs` and `variant`
  (the config keys that differ between rows of one method, e.g. "lr=0.001", so that different
  configurations are never averaged together).
* `aggregate`: one row per (group, metric) with `n` (completed seeds), `n_excluded` (failed or unfinished
  trials, left out of the mean), `mean` and `std` (sample standard deviation, ddof=1; null when n < 2).
"""

from __future__ import annotations

import polars as pl

# The ablation flags and the config columns that record them (studies before the `gr` sub-config wrote
# `cfg.method.gr`). A results row leaves an option that was not set null: `flag_defaults` fills it from the
# method's options dataclass, the one source of the defaults.
FLAGS = {"oe": ("cfg.method.oe",), "gr": ("cfg.method.gr.enabled", "cfg.method.gr"), "dml": ("cfg.method.dml",)}
BASE_KEYS = ("method", "dataset", "tasks", "backbone")
GROUP_KEYS = (*BASE_KEYS, "oe", "gr", "dml", "epochs", "variant", "rule")
# The energy rule of a subspace method ("eig ≥ 0.97"): its criterion and threshold, from the columns that
# record them (older studies: eps_start / energy_criterion), else the method's defaults. A comparison of
# estimators (OE vs GPM) pairs rows with the same rule.
RULE_COLUMNS = {"threshold": ("cfg.method.threshold", "cfg.method.eps_start"),
                "criterion": ("cfg.method.criterion", "cfg.method.energy_criterion")}
TABLE_METRICS = ("acc", "maa", "bwt")
# Config keys that name the group already or cannot change a result.
IGNORED_CONFIG = {"cfg.method.name", "cfg.data.dataset", "cfg.data.tasks", "cfg.backbone.name",
                  *(c for columns in FLAGS.values() for c in columns),
                  "cfg.data.root", "cfg.backbone.weights", "cfg.optim.device", "cfg.optim.num_workers",
                  "cfg.optim.eval_batch_size"}


def is_completed() -> pl.Expr:
    """A trial counts when it completed with a finite final accuracy; anything else is excluded."""
    return ((pl.col("status") == "completed") & pl.col("acc").is_finite()).fill_null(False)


def table_rows(results: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """Rows the tables report and a note for the caption ("" unless the study was search-only)."""
    final = results.filter(pl.col("stage").is_null() | (pl.col("stage") != "search"))
    if final.height or results.height == 0:
        return final, ""
    best = (results.filter(is_completed())
            .sort("val_acc_all", descending=True, nulls_last=True, maintain_order=True)
            .group_by(BASE_KEYS, maintain_order=True).first())
    return best, "Search-only study: the best search trial per method by val_acc_all (validation split)."


def option_defaults(option: str) -> dict[str, object]:
    """{method: default} of one option, for the methods whose options have it."""
    from janus.methods import METHODS

    defaults = {name: cls.Options() for name, cls in METHODS.items()}
    return {name: getattr(options, option) for name, options in defaults.items() if hasattr(options, option)}


def flag_defaults() -> dict[str, dict[str, bool]]:
    """{method: {flag: default}} for the methods whose options have the flag (GR: `gr.enabled`)."""
    result: dict[str, dict[str, bool]] = {}
    for flag in FLAGS:
        for name, value in option_defaults(flag).items():
            value = getattr(value, "enabled", value)
            if isinstance(value, bool):
                result.setdefault(name, {})[flag] = value
    return result


def _option(rows: pl.DataFrame, option: str, dtype) -> pl.Expr:
    present = [pl.col(c).cast(dtype) for c in RULE_COLUMNS[option] if c in rows.columns]
    value = pl.coalesce(present) if present else pl.lit(None, dtype)
    default = pl.col("method").replace_strict(option_defaults(option), default=None, return_dtype=dtype)
    return value.fill_null(default)


def _rule(rows: pl.DataFrame) -> pl.Expr:
    """'eig ≥ 0.97' for methods with an energy threshold, else null."""
    threshold = _option(rows, "threshold", pl.Float64)
    return pl.format("{} ≥ {}", _option(rows, "criterion", pl.String), threshold.round(4)).alias("rule")


def _flag(rows: pl.DataFrame, name: str, flags_by_method: dict[str, dict[str, bool]]) -> pl.Expr:
    """The flag's value: as set, else the method's default, else null (a method without that option)."""
    present = [pl.col(c).cast(pl.Boolean) for c in FLAGS[name] if c in rows.columns]
    value = pl.coalesce(present) if present else pl.lit(None, pl.Boolean)
    defaults = {method: flags[name] for method, flags in flags_by_method.items() if name in flags}
    default = pl.col("method").replace_strict(defaults, default=None, return_dtype=pl.Boolean)
    return value.fill_null(default).alias(name)


def variant_keys(rows: pl.DataFrame) -> list[str]:
    """Config columns that take more than one value within a (method, benchmark, backbone, flags) group."""
    columns = [c for c in rows.columns
               if c.startswith("cfg.") and c not in IGNORED_CONFIG and "seed" not in c.rsplit(".", 1)[-1]]
    if not columns or rows.height == 0:
        return []
    counts = rows.group_by(*BASE_KEYS, *FLAGS).agg(pl.col(c).n_unique() for c in columns)
    return [c for c in columns if counts[c].max() > 1]


def _format_value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _variant_label(keys: list[str]):
    short = {key: key.rsplit(".", 1)[-1] for key in keys}
    if len(set(short.values())) < len(keys):
        short = {key: key.removeprefix("cfg.") for key in keys}
    return lambda row, shown=keys: ", ".join(f"{short[k]}={_format_value(row[k])}" for k in keys
                                             if k in shown and row[k] is not None)


def with_flags(rows: pl.DataFrame) -> pl.DataFrame:
    """Add the ablation flag columns oe, gr, dml (Boolean): as recorded, else the method's default."""
    defaults = flag_defaults()
    return rows.with_columns(*(_flag(rows, name, defaults) for name in FLAGS))


def with_keys(rows: pl.DataFrame) -> pl.DataFrame:
    """Add the grouping columns oe, gr, dml (Boolean), epochs (Int64) and variant (String)."""
    rows = with_flags(rows)
    epochs = pl.col("cfg.optim.epochs").cast(pl.Int64) if "cfg.optim.epochs" in rows.columns else pl.lit(None)
    keys = variant_keys(rows)
    if keys:
        varying = _varying_per_group(rows, keys)
        label = _variant_label(keys)
        group = [*BASE_KEYS, *FLAGS]
        variant = pl.struct(*group, *keys).map_elements(
            lambda row: label(row, varying.get(tuple(row[k] for k in group), ())), return_dtype=pl.String)
    else:
        variant = pl.lit("")
    return rows.with_columns(epochs.cast(pl.Int64).alias("epochs"), variant.alias("variant"), _rule(rows))


def _varying_per_group(rows: pl.DataFrame, keys: list[str]) -> dict[tuple, tuple[str, ...]]:
    """{(method, dataset, tasks, backbone, oe, gr, dml): the keys that take several values in that group}: a
    row is labelled only with what distinguishes it from its own method's other rows."""
    group = [*BASE_KEYS, *FLAGS]
    counts = rows.group_by(group).agg(pl.col(c).n_unique() for c in keys)
    return {tuple(r[k] for k in group): tuple(c for c in keys if r[c] > 1) for r in counts.iter_rows(named=True)}


def aggregate(rows: pl.DataFrame, metrics: tuple[str, ...] = TABLE_METRICS) -> pl.DataFrame:
    """Long frame: GROUP_KEYS, metric, mean, std (ddof=1), n, n_excluded; one row per group and metric."""
    rows = with_keys(rows)
    ok = is_completed()
    wide = rows.group_by(GROUP_KEYS, maintain_order=True).agg(
        ok.sum().cast(pl.Int64).alias("n"), (~ok).sum().cast(pl.Int64).alias("n_excluded"),
        *(pl.col(m).filter(ok).mean().alias(f"{m}:mean") for m in metrics),
        *(pl.col(m).filter(ok).std(ddof=1).alias(f"{m}:std") for m in metrics))
    return pl.concat([
        wide.select(*GROUP_KEYS, pl.lit(m).alias("metric"), pl.col(f"{m}:mean").alias("mean"),
                    pl.col(f"{m}:std").alias("std"), "n", "n_excluded")
        for m in metrics])


def summarize(results: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """Trial rows -> (aggregate, caption note): what every table layout starts from."""
    rows, note = table_rows(results)
    return aggregate(rows), note
