"""The end-of-study report: tables and figures written beside the results and logged to MLflow.

`study_report(study_dir)` is what `python -m study.run` calls when a study ends: it writes every table
(md, tex, csv, html; with the paper comparisons) to `<study>/report/tables/` and every figure (png, svg) to
`<study>/report/figures/`, logs both folders as artifacts `tables/` and `figures/` of the study's MLflow
parent run (named in `study.json`), and returns the main table in Markdown for the study command to print.
"""

from __future__ import annotations

import sys
from pathlib import Path

from analysis.format import to_markdown
from analysis.load import load_study, read_study_meta
from analysis.plots import draw_all
from analysis.tables import build_tables, write_tables
from janus.errors import UserError

REPORT_DIR = "report"


def log_report(meta: dict, report_dir: Path) -> bool:
    """Log report_dir's tables/ and figures/ to the parent run; False (and one line on stderr) on failure."""
    uri, run_id = meta.get("tracking_uri"), meta.get("parent_run_id")
    if not (uri and run_id):
        return False
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    try:
        for part in ("tables", "figures"):
            if (report_dir / part).is_dir():
                client.log_artifacts(run_id, str(report_dir / part), part)
    except (MlflowException, OSError) as error:
        print(f"warning: could not log the report to MLflow run {run_id} at {uri}: {error}; "
              f"it is in {report_dir}", file=sys.stderr)
        return False
    return True


CLAIMS_FILE = "claims.md"


def write_claims(results, report_dir: Path) -> Path | None:
    """<report>/tables/claims.md when the study ran Janus-LoRA's ablation rows (analysis/claims.py)."""
    from analysis.claims import claims_markdown, runs_from_results

    runs = runs_from_results(results) if results.height else []
    if len({run.flags for run in runs}) < 2:
        return None
    path = report_dir / "tables" / CLAIMS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(claims_markdown(runs) + "\n")
    return path


def study_report(study_dir: str | Path, log_to_mlflow: bool = True) -> str:
    """Write the study's tables and figures under <study_dir>/report/, log them to the study's MLflow
    parent run when `log_to_mlflow` and study.json names one, and return the main Markdown table."""
    study_dir = Path(study_dir)
    results = load_study(study_dir)
    tables = build_tables(results, paper=True)
    report_dir = study_dir / REPORT_DIR
    write_tables(tables, report_dir / "tables")
    draw_all(results, report_dir / "figures")
    write_claims(results, report_dir)
    if log_to_mlflow:
        log_report(read_study_meta(study_dir), report_dir)
    main = [table for table in tables if table.name == "main"]
    if not main:
        raise UserError(f"the study in {study_dir} has no trial to tabulate ({results.height} trials, "
                        f"none completed); see {report_dir / 'figures'} for the search history")
    return to_markdown(main[0])
