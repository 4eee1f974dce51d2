"""The columns of a results row (results.parquet and the MLflow loader both conform to them)."""

from __future__ import annotations

import polars as pl

from janus.errors import UserError

METRIC_COLUMNS = ("acc", "maa", "acc_task", "maa_task", "bwt", "fgt", "acc_all",
                  "val_acc", "val_maa", "val_acc_all")

# The columns before the `cfg.*` ones (identity) and after them (results): the one definition, which
# study/results.py writes and the loaders read.
FIXED_SCHEMA: dict[str, pl.DataType] = {
    "study": pl.String, "trial_id": pl.String, "status": pl.String, "error": pl.String,
    "method": pl.String, "dataset": pl.String, "tasks": pl.Int64, "backbone": pl.String, "seed": pl.Int64,
    "stage": pl.String, "config_json": pl.String,
}
TAIL_SCHEMA: dict[str, pl.DataType] = {
    **{name: pl.Float64 for name in METRIC_COLUMNS},
    "acc_matrix": pl.List(pl.List(pl.Float64)), "n_test": pl.List(pl.Int64),
    "task_wall_s": pl.List(pl.Float64), "wall_s": pl.Float64, "peak_memory_mb": pl.Float64,
    "diagnostics_json": pl.String, "git_sha": pl.String, "device": pl.String, "node_id": pl.String,
    "finished_at": pl.String,
}
RESULT_SCHEMA: dict[str, pl.DataType] = {**FIXED_SCHEMA, **TAIL_SCHEMA}
REQUIRED = ("status", "method", "dataset", "tasks", "backbone", "seed")

def conform(frame: pl.DataFrame, origin: str = "results") -> pl.DataFrame:
    """Cast to `RESULT_SCHEMA` (fixed columns first, nulls for missing ones), then the `cfg.*` columns."""
    missing = [name for name in REQUIRED if name not in frame.columns]
    if missing:
        raise UserError(f"{origin} lacks the column(s) {', '.join(missing)}; is it a results.parquet of a study?")
    fixed = [pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)
             for name, dtype in RESULT_SCHEMA.items()]
    config = [name for name in frame.columns if name.startswith("cfg.")]
    return frame.select(*fixed, *config)
