"""The results store: one row per finished trial in `<studies_dir>/<study>/results.parquet`.

The analysis (`analysis/`) reads this file; the schema is a contract, one row per trial:

    study: str                 the study name
    trial_id: str              Ray Tune trial id; the key (a resumed or retried trial replaces its row)
    status: str                "completed" | "failed"
    error: str | null          the exception line of a failed trial (null when completed)
    method: str, dataset: str, tasks: int, backbone: str, seed: int
    stage: str                 "grid" | "search" | "replicate"
    config_json: str           the resolved ExperimentConfig as JSON (method options with their defaults)
    cfg.<flat key>             one column per ExperimentConfig.to_flat() key (scalars; tuples, lists and
                               dicts as JSON strings; method options as cfg.method.<name>)
    acc, maa, acc_task, maa_task, bwt, fgt, acc_all, val_acc, val_maa, val_acc_all:
                               float64, percent (null when failed)
    acc_matrix: list[list[float64]]   T x T, NaN for unseen tasks (null when failed)
    n_test: list[int64]        test-set size of each task
    task_wall_s: list[float64] training wall time of each task
    wall_s: float64            wall time of the whole trial (summed over resumes)
    peak_memory_mb: float64
    diagnostics_json: str      JSON list, one dict per task (the method's diagnostics)
    git_sha: str, device: str
    node_id: str               the Ray node that ran the trial's last task (which machine, on a cluster)
    finished_at: str           ISO 8601, UTC

Rows are written by the driver (a Tune callback, so one process writes) under an exclusive file lock, to a
temporary file that replaces the old one atomically (`os.replace`). A trial stopped early by the ASHA
scheduler is recorded as "failed" with the error "stopped early by the scheduler after k of T tasks", so
that "completed" always means all T tasks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import math
import os
import types
import typing
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from analysis.schema import FIXED_SCHEMA, TAIL_SCHEMA
from analysis.schema import METRIC_COLUMNS as METRICS


def build_row(*, study: str, stage: str, trial_id: str, config, metrics: dict, error: str | None) -> dict:
    """One row from a resolved ExperimentConfig and a trial's last reported metrics (see the schema)."""
    failed = error is not None
    row = {"study": study, "trial_id": trial_id, "status": "failed" if failed else "completed", "error": error,
           "method": config.method.name, "dataset": config.data.dataset, "tasks": config.data.tasks,
           "backbone": config.backbone.name, "seed": config.seed, "stage": stage,
           "config_json": config.to_json()}
    row.update({f"cfg.{k}": _scalar(v) for k, v in sorted(config.to_flat().items())})
    row.update({name: None if failed else _float(metrics.get(name)) for name in METRICS})
    row.update({
        "acc_matrix": None if failed else [[_float(a, nan=True) for a in r] for r in metrics["acc_matrix"]],
        "n_test": None if failed else [int(n) for n in metrics["n_test"]],
        "task_wall_s": [float(s) for s in metrics.get("task_wall_s", [])],
        "wall_s": _float(metrics.get("wall_s")), "peak_memory_mb": _float(metrics.get("peak_memory_mb")),
        "diagnostics_json": metrics.get("diagnostics_json", "[]"),
        "git_sha": metrics.get("git_sha") or "unknown", "device": metrics.get("device") or "unknown",
        "node_id": metrics.get("node_id") or "unknown",
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    return row


def _scalar(value):
    if isinstance(value, (tuple, list, dict)):
        return json.dumps(value, default=list)
    return value


def _float(value, nan: bool = False) -> float | None:
    if value is None:
        return math.nan if nan else None
    return float(value)


def cfg_dtypes(config) -> dict[str, pl.DataType]:
    """Parquet types of the cfg.* columns, from the config dataclasses' annotations (so a column that is
    null in every row still has its real type): int, float, bool, str; tuples and dicts as JSON strings."""
    from janus.methods import method_class

    kinds = _annotations(type(config), "")
    kinds.pop("method.params", None)
    kinds.update(_annotations(method_class(config.method.name).Options, "method."))
    return {f"cfg.{key}": _dtype(kind) for key, kind in kinds.items()}


def _annotations(cls, prefix: str) -> dict:
    kinds = {}
    for name, kind in typing.get_type_hints(cls).items():
        if dataclasses.is_dataclass(kind):
            kinds.update(_annotations(kind, f"{prefix}{name}."))
        else:
            kinds[f"{prefix}{name}"] = kind
    return kinds


def _dtype(kind) -> pl.DataType:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    return {bool: pl.Boolean, int: pl.Int64, float: pl.Float64}.get(kind, pl.String)


def to_frame(rows: list[dict], cfg_schema: dict[str, pl.DataType] | None = None) -> pl.DataFrame:
    """Rows -> a frame with the fixed columns typed by the schema and cfg.* typed by `cfg_schema`."""
    cfg_names = sorted({k for row in rows for k in row if k.startswith("cfg.")})
    schema_overrides = {**FIXED_SCHEMA, **TAIL_SCHEMA, **(cfg_schema or {})}
    frame = pl.DataFrame(rows, schema_overrides=schema_overrides, infer_schema_length=None, strict=False)
    return frame.select([*FIXED_SCHEMA, *cfg_names, *TAIL_SCHEMA])


@contextlib.contextmanager
def locked(path: Path):
    """An exclusive lock on `<path>.lock` (fcntl), held while reading and replacing the store."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upsert(path: Path, rows: list[dict], cfg_schema: dict | None = None) -> pl.DataFrame:
    """Add rows, replacing any earlier row with the same trial_id; written atomically under the lock."""
    new = to_frame(rows, cfg_schema)
    with locked(path):
        if path.exists():
            old = pl.read_parquet(path).filter(~pl.col("trial_id").is_in(new["trial_id"].to_list()))
            new = pl.concat([old, new], how="diagonal_relaxed")
            new = new.select([*FIXED_SCHEMA, *sorted(c for c in new.columns if c.startswith("cfg.")),
                              *TAIL_SCHEMA])
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        new.write_parquet(temporary)
        os.replace(temporary, path)
    return new


def read(path: Path) -> pl.DataFrame:
    """The study's rows (an empty frame before the first trial finished)."""
    if not path.exists():
        return pl.DataFrame(schema={**FIXED_SCHEMA, **TAIL_SCHEMA})
    with locked(path):
        return pl.read_parquet(path)


def to_json(value) -> str:
    """Strict JSON: NaN and infinities -> null, tensors and numpy values -> lists and numbers."""
    return json.dumps(_clean(value), default=lambda v: _clean(v.tolist()) if hasattr(v, "tolist") else str(v))


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value
