"""`python -m analysis.tables` and `python -m analysis.plots`: output, files, and one-line errors."""

import subprocess
import sys
from pathlib import Path

import pytest
from results_rows import make_row, results_frame

from analysis import plots, tables
from analysis.cli import run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def studies(tmp_path):
    folder = tmp_path / "demo"
    folder.mkdir()
    rows = [make_row(m, "imagenet-r", 10, seed=s, acc=a + s) for m, a in [("janus", 76), ("inflora", 74)] for s in range(3)]
    results_frame(rows).write_parquet(folder / "results.parquet")
    return tmp_path


def test_tables_prints_markdown_and_writes_every_format(studies, capsys, tmp_path):
    out = tmp_path / "out"
    assert run(tables.main, ["--study", "demo", "--studies-dir", str(studies), "--paper", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("**Main results (ACC / MAA / BWT, %)**")
    assert "| Janus-LoRA | ImageNet-R (T=10) | 75.78 ± 0.16 | 77.00 ± 1.00 | +1.22 |" in printed  # paper, ours, Δ
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{name}.{ext}" for name in ("main", "main_vs_paper") for ext in ("md", "tex", "csv", "html"))


def test_tables_prints_latex_of_one_table(studies, capsys):
    assert run(tables.main, ["--study", "demo", "--studies-dir", str(studies), "--format", "tex"]) == 0
    printed = capsys.readouterr().out
    assert printed.count(r"\begin{table}") == 1 and r"$\mathbf{77.00}_{1.00}$" in printed


def test_a_table_the_results_cannot_fill_is_one_line(studies, capsys):
    assert run(tables.main, ["--study", "demo", "--studies-dir", str(studies), "--table", "ablation"]) == 2
    assert capsys.readouterr().err.startswith("error: nothing to tabulate for ablation")


def test_plots_writes_figures_under_the_study_by_default(studies, capsys):
    assert run(plots.main, ["--study", "demo", "--studies-dir", str(studies)]) == 0
    figures = studies / "demo" / "report" / "figures"  # the folder the study's own report uses
    assert {p.name for p in figures.iterdir()} >= {"curves-imagenet-r-t10-vit.png", "bars-imagenet-r-t10-vit.svg"}
    assert capsys.readouterr().out.startswith(f"wrote 6 files to {figures}")


def test_python_m_analysis_tables_reports_a_missing_study_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "analysis.tables", "--study", "nope", "--studies-dir", str(tmp_path)],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"error: study 'nope' not found: no folder {tmp_path / 'nope'} "
                           "(set --studies-dir to the folder that holds your studies)\n")
