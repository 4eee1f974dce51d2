"""Load the results of one or more studies into one Polars frame with a fixed schema.

A study lives in `<studies_dir>/<name>/`: `results.parquet` (one row per trial, written by `study/`) and
`study.json` (name, tracking_uri, experiment_id, parent_run_id, created, argv). When the Parquet file is not
at hand the rows are rebuilt from the study's MLflow runs (`analysis.mlflow_load`).

The frame has the columns of `RESULT_SCHEMA` in this order (a column missing from a file is filled with
nulls; `status`, `method`, `dataset`, `tasks`, `backbone` and `seed` are required), followed by one
`cfg.<flat key>` column per config key (e.g. `cfg.optim.lr`, `cfg.method.oe`), in first-seen order. Metrics
are percent (0-100), null for failed trials; `acc_matrix[t][j]` is the accuracy on task j after task t
(NaN for j > t).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from analysis.schema import METRIC_COLUMNS, RESULT_SCHEMA, conform  # noqa: F401 (re-exported)
from janus.errors import UserError

RESULTS_FILE = "results.parquet"
STUDY_FILE = "study.json"


def resolve_study(study: str | Path, studies_dir: str | Path = "studies") -> Path:
    """`--study NAME` -> `<studies_dir>/NAME`; a path to an existing study folder is taken as it is."""
    direct = Path(study)
    if (direct / RESULTS_FILE).is_file() or (direct / STUDY_FILE).is_file():
        return direct
    folder = Path(studies_dir) / str(study)
    if not folder.is_dir():
        raise UserError(f"study {str(study)!r} not found: no folder {folder} (set --studies-dir to the folder "
                        f"that holds your studies)")
    return folder


def read_study_meta(study_dir: str | Path) -> dict:
    """The study's `study.json`, or {} when it has none."""
    path = Path(study_dir) / STUDY_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not valid JSON ({error}); fix or delete it") from error


def read_results(path: str | Path) -> pl.DataFrame:
    path = Path(path)
    try:
        frame = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise UserError(f"cannot read {path}: {error}") from error
    return conform(frame, str(path))


def load_study(study_dir: str | Path) -> pl.DataFrame:
    """One study's rows: its `results.parquet`, else its MLflow runs (study.json names the parent run)."""
    study_dir = Path(study_dir)
    meta = read_study_meta(study_dir)
    if (study_dir / RESULTS_FILE).is_file():
        frame = read_results(study_dir / RESULTS_FILE)
    elif meta.get("tracking_uri") and meta.get("parent_run_id"):
        from analysis.mlflow_load import load_mlflow

        frame = load_mlflow(meta["tracking_uri"], meta["parent_run_id"], study=meta.get("name", study_dir.name))
    else:
        raise UserError(f"no {RESULTS_FILE} in {study_dir} and no MLflow parent run in its {STUDY_FILE}; "
                        f"has the study run yet?")
    if frame.height == 0:
        raise UserError(f"the study in {study_dir} has no trials yet: its results are empty")
    return frame


def load_results(studies: Iterable[str | Path], studies_dir: str | Path = "studies") -> pl.DataFrame:
    """Rows of every named study (names or folders) in one frame, config columns unioned."""
    frames = [load_study(resolve_study(study, studies_dir)) for study in studies]
    if not frames:
        raise UserError("no study given: name one with --study NAME")
    return pl.concat(frames, how="diagonal_relaxed")
