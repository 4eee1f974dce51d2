"""Pure frame -> frame preparation of what the figures draw (`analysis.plots` only draws).

Every function takes trial rows of the results schema and returns a long frame labelled like the tables:
`label` (method row label, e.g. "LoRA-GPM+GR"), `benchmark` ("ImageNet-R (T=10), DINO") and `slug` (the same
for file names). Only completed trials are drawn, except in the search history, which counts failures.
"""

from __future__ import annotations

import json
import math
import re
import warnings

import numpy as np
import polars as pl

from analysis import names
from analysis.aggregate import BASE_KEYS, IGNORED_CONFIG, is_completed, with_keys
from analysis.layouts import method_row
from janus.metrics import pooled_curve

BENCHMARK = ("dataset", "tasks", "backbone")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def labelled(rows: pl.DataFrame) -> pl.DataFrame:
    """Completed trials with `label` (and its paper-order rank `label_order`), `benchmark` and its file-name
    `slug` ("imagenet-r-t10-vit")."""
    rows = with_keys(rows.filter(is_completed()))
    if rows.height == 0:
        return rows.with_columns(label=pl.lit(""), label_order=pl.lit(0), benchmark=pl.lit(""), slug=pl.lit(""))
    keyed = [method_row(r) for r in rows.select("method", "gr", "oe", "dml", "epochs", "variant")
             .iter_rows(named=True)]
    rank = {key: i for i, key in enumerate(sorted({key for _, key in keyed}))}
    keys = rows.select(BENCHMARK).iter_rows()
    benchmarks, slugs = zip(*((f"{names.benchmark_name(d, t)}, {names.backbone_name(b)}", slug(f"{d} T{t} {b}"))
                              for d, t, b in keys))
    return rows.with_columns(label=pl.Series([label for label, _ in keyed], dtype=pl.String),
                             label_order=pl.Series([rank[key] for _, key in keyed], dtype=pl.Int64),
                             benchmark=pl.Series(benchmarks), slug=pl.Series(slugs))


def accuracy_curves(rows: pl.DataFrame) -> pl.DataFrame:
    """Pooled accuracy on the seen classes after each task: label, benchmark, slug, task (1-based), mean,
    std (ddof=1, null for one seed), n."""
    records = []
    for r in labelled(rows).filter(pl.col("acc_matrix").is_not_null()).iter_rows(named=True):
        curve = pooled_curve(r["acc_matrix"], r["n_test"] or [1] * len(r["acc_matrix"][0]))
        records += [{"label": r["label"], "label_order": r["label_order"], "benchmark": r["benchmark"],
                     "slug": r["slug"], "task": t + 1, "value": float(v)} for t, v in enumerate(curve)]
    if not records:
        return pl.DataFrame()
    return (pl.DataFrame(records)
            .group_by("label", "label_order", "benchmark", "slug", "task", maintain_order=True)
            .agg(pl.col("value").mean().alias("mean"), pl.col("value").std().alias("std"), pl.len().alias("n"))
            .sort("slug", "label_order", "task"))


def mean_matrices(rows: pl.DataFrame) -> list[dict]:
    """Mean accuracy matrix over seeds per (benchmark, label): dicts with label, benchmark, slug, matrix, n."""
    done = labelled(rows).filter(pl.col("acc_matrix").is_not_null()).sort("slug", "label_order", maintain_order=True)
    out = []
    for (label, benchmark, slug), group in done.group_by("label", "benchmark", "slug", maintain_order=True):
        stack = np.array(group["acc_matrix"].to_list(), dtype=float)
        with warnings.catch_warnings():  # the unseen (upper) triangle is NaN in every seed
            warnings.simplefilter("ignore", RuntimeWarning)
            matrix = np.nanmean(stack, axis=0)
        out.append({"label": label, "benchmark": benchmark, "slug": slug, "matrix": matrix, "n": group.height})
    return out


def final_metrics(rows: pl.DataFrame, metrics=("acc", "bwt")) -> pl.DataFrame:
    """Per (benchmark, label): mean and std (ddof=1) of each metric over seeds, long: metric, mean, std, n."""
    done = labelled(rows).sort("slug", "label_order", maintain_order=True)
    if done.height == 0:
        return pl.DataFrame()
    return pl.concat([
        done.group_by("label", "label_order", "benchmark", "slug", maintain_order=True)
        .agg(pl.lit(m).alias("metric"), pl.col(m).mean().alias("mean"), pl.col(m).std().alias("std"),
             pl.len().alias("n"))
        for m in metrics])


def _per_task(diagnostics_json: str | None) -> list[dict]:
    try:
        tasks = json.loads(diagnostics_json or "[]")
    except json.JSONDecodeError:
        return []
    return [task if isinstance(task, dict) else {} for task in tasks] if isinstance(tasks, list) else []


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _layer(key: str) -> tuple[int, str] | None:
    """"blocks.7.k" -> (7, "k"): the first integer is the block, a final k/v segment the projection."""
    number, projection = re.search(r"\d+", key), key.rsplit(".", 1)[-1].lower()
    return (int(number.group()), projection) if number and projection in ("k", "v") else None


def diagnostics(rows: pl.DataFrame) -> pl.DataFrame:
    """Janus diagnostics, long: label, label_order, benchmark, slug, seed, task (1-based), kind ("danger",
    "own_center" or "interference"), block (null but for interference), projection ("k"/"v"), value.
    Missing keys, nulls and non-Janus rows are skipped."""
    records = []
    for r in labelled(rows).filter(pl.col("method") == "janus").iter_rows(named=True):
        base = {k: r[k] for k in ("label", "label_order", "benchmark", "slug", "seed")}
        for t, task in enumerate(_per_task(r["diagnostics_json"]), start=1):
            for kind in ("danger", "own_center"):
                if _finite(task.get(kind)):
                    records.append({**base, "task": t, "kind": kind, "block": None, "projection": None,
                                    "value": float(task[kind])})
            for key, value in (task.get("interference") or {}).items():
                layer = _layer(key)
                if layer and _finite(value):
                    records.append({**base, "task": t, "kind": "interference", "block": layer[0],
                                    "projection": layer[1], "value": float(value)})
    return pl.DataFrame(records, infer_schema_length=None) if records else pl.DataFrame()


def search_history(rows: pl.DataFrame) -> pl.DataFrame:
    """Search trials per (method, benchmark) in the order they finished: trial (1-based), val_acc_all
    (null for failed trials), best_so_far."""
    search = rows.filter(pl.col("stage") == "search")
    if search.height == 0:
        return pl.DataFrame()
    ok = is_completed() & pl.col("val_acc_all").is_not_null()
    return (search.sort("finished_at", "trial_id", nulls_last=True)
            .with_columns(pl.when(ok).then(pl.col("val_acc_all")).alias("objective"))
            .with_columns(pl.int_range(1, pl.len() + 1).over(BASE_KEYS).alias("trial"),
                          pl.col("objective").cum_max().forward_fill().over(BASE_KEYS).alias("best_so_far"))
            .select(*BASE_KEYS, "trial_id", "trial", "objective", "best_so_far"))


def _search_params(search: pl.DataFrame) -> list[str]:
    numeric = [c for c, dtype in search.schema.items() if c.startswith("cfg.") and c not in IGNORED_CONFIG
               and "seed" not in c.rsplit(".", 1)[-1] and (dtype.is_numeric() or dtype == pl.Boolean)]
    return [c for c in numeric if search[c].drop_nulls().n_unique() > 1]


def parameter_importance(rows: pl.DataFrame) -> pl.DataFrame:
    """Spearman rank correlation of each searched numeric or boolean parameter with val_acc_all over the
    completed search trials of each (method, benchmark): param, rho, importance = |rho|, n. Categorical
    parameters are left out (a rank correlation needs an order)."""
    search = rows.filter(pl.col("stage") == "search", is_completed(), pl.col("val_acc_all").is_not_null())
    records = []
    for key, group in search.group_by(BASE_KEYS, maintain_order=True):
        for param in _search_params(group):
            data = group.select(pl.col(param).cast(pl.Float64).alias("x"), "val_acc_all").drop_nulls()
            rho = data.select(pl.corr("x", "val_acc_all", method="spearman")).item() if data.height > 2 else None
            if rho is not None and np.isfinite(rho):
                records.append({**dict(zip(BASE_KEYS, key)), "param": param.removeprefix("cfg."), "rho": rho,
                                "importance": abs(rho), "n": data.height})
    if not records:
        return pl.DataFrame()
    return pl.DataFrame(records).sort(*BASE_KEYS, "importance", descending=[False] * 4 + [True])
