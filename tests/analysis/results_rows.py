"""Synthetic results rows in the exact `results.parquet` schema that `study/` writes (test helpers)."""

from __future__ import annotations

import json
import math

import polars as pl

from analysis.load import RESULT_SCHEMA


def accuracy_matrix(tasks: int, start: float = 90.0, drop: float = 2.0) -> list[list[float]]:
    """a[t][j] = start - drop·(t - j) for j <= t, NaN above the diagonal."""
    return [[start - drop * (t - j) if j <= t else math.nan for j in range(tasks)] for t in range(tasks)]


def janus_diagnostics(tasks: int, blocks: int = 3, scale: float = 0.4) -> str:
    """Per-task Janus diagnostics: no interference or danger on task 1, as the method logs them."""
    per_task = [{}]
    for t in range(1, tasks):
        per_task.append({
            "interference": {f"blocks.{b}.{m}": scale * (b + 1) / blocks * (1.1 if m == "v" else 1.0)
                             for b in range(blocks) for m in "kv"},
            "basis_dim": {f"blocks.{b}": 10 * t for b in range(blocks)},
            "danger": scale - 0.01 * t, "own_center": 0.6 + 0.01 * t})
    return json.dumps(per_task)


def make_row(method="janus", dataset="imagenet-r", tasks=3, backbone="vit", seed=0, acc=75.0, maa=80.0,
             bwt=-5.0, status="completed", stage="grid", cfg=None, matrix=None, diagnostics=None,
             val_acc_all=None, trial_id=None, finished_at=None) -> dict:
    failed = status != "completed"
    config = {"cfg.method.name": method, "cfg.data.dataset": dataset, "cfg.data.tasks": tasks,
              "cfg.backbone.name": backbone, "cfg.seed": seed, "cfg.optim.lr": 5e-4, "cfg.optim.epochs": 5,
              **(cfg or {})}
    metrics = {"acc": acc, "maa": maa, "bwt": bwt, "acc_task": acc, "maa_task": maa, "fgt": -bwt,
               "acc_all": maa, "val_acc": acc, "val_maa": maa,
               "val_acc_all": maa if val_acc_all is None else val_acc_all}
    return {
        "study": "synthetic", "trial_id": trial_id or f"{method}-{dataset}-{tasks}-{backbone}-{seed}",
        "status": status, "error": "RuntimeError: boom" if failed else None,
        "method": method, "dataset": dataset, "tasks": tasks, "backbone": backbone, "seed": seed,
        "stage": stage, "config_json": json.dumps(config),
        **{k: (None if failed else v) for k, v in metrics.items()},
        "acc_matrix": None if failed else (matrix or accuracy_matrix(tasks, start=acc + 2 * (tasks - 1))),
        "n_test": [100] * tasks, "task_wall_s": None if failed else [1.5] * tasks,
        "wall_s": None if failed else 1.5 * tasks, "peak_memory_mb": 512.0,
        "diagnostics_json": diagnostics or json.dumps([{}] * tasks), "git_sha": "abc1234", "device": "cpu", "node_id": "node-1",
        "finished_at": finished_at or f"2026-01-01T00:00:{seed:02d}Z", **config,
    }


def results_frame(rows: list[dict]) -> pl.DataFrame:
    """Rows -> frame with the fixed schema's dtypes (cfg.* columns inferred, missing keys null)."""
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return frame.with_columns(pl.col(name).cast(dtype) for name, dtype in RESULT_SCHEMA.items())

