"""Figures for a small study in the exact results schema, and the frames they are drawn from."""

import json
import math

import polars as pl
import pytest
from results_rows import janus_diagnostics, make_row, results_frame

from analysis import plotdata
from analysis.aggregate import table_rows
from analysis.load import load_study
from analysis.plots import draw_all


def small_study_rows() -> list[dict]:
    rows = []
    for seed in range(2):
        rows.append(make_row("janus", seed=seed, acc=75.0 + seed, diagnostics=janus_diagnostics(3)))
        rows.append(make_row("janus", seed=seed, acc=70.0 + seed, cfg={"cfg.method.gr": False},
                             diagnostics=janus_diagnostics(3, scale=0.8)))
        rows.append(make_row("inflora", seed=seed, acc=72.0 + seed))
    rows.append(make_row("inflora", seed=2, status="failed"))
    for i, (lr, objective) in enumerate([(1e-4, 50.0), (3e-4, 58.0), (1e-3, 61.0), (3e-3, 55.0)]):
        rows.append(make_row("janus", stage="search", trial_id=f"s{i}", val_acc_all=objective,
                             cfg={"cfg.optim.lr": lr}, finished_at=f"2026-01-02T00:00:0{i}Z"))
    rows.append(make_row("janus", stage="search", trial_id="s9", status="failed", finished_at="2026-01-02T00:01Z"))
    return rows


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    results_frame(small_study_rows()).write_parquet(folder / "results.parquet")
    rows = load_study(folder)
    return rows, draw_all(rows, folder / "figures")


def reported(rows: pl.DataFrame) -> pl.DataFrame:
    return table_rows(rows)[0]  # the per-benchmark figures draw what the tables report (no search trials)


def test_every_figure_is_written_as_non_empty_png_and_svg(study):
    _, paths = study
    stems = {path.stem for path in paths}
    assert stems == {f"{kind}-imagenet-r-t3-vit" for kind in ("curves", "heatmaps", "bars", "interference", "danger")} \
        | {"search-janus-imagenet-r-t3-vit"}
    for path in paths:
        data = path.read_bytes()
        assert len(data) > 2000, path
        assert data.startswith(b"\x89PNG") if path.suffix == ".png" else b"<svg" in data[:2000]


def test_accuracy_curve_is_the_pooled_accuracy_mean_and_std_over_seeds(study):
    rows, _ = study
    curves = plotdata.accuracy_curves(reported(rows)).filter(pl.col("label") == "InfLoRA")
    # make_row: a[t][j] = acc + 4 - 2(t - j), equal task sizes -> A_t = acc + 4 - t (t = 0, 1, 2)
    assert curves["mean"].to_list() == pytest.approx([76.5, 75.5, 74.5])
    assert curves["std"].to_list() == pytest.approx([math.sqrt(0.5)] * 3)
    assert curves["n"].to_list() == [2, 2, 2]  # the failed seed is not drawn


def test_interference_and_danger_are_read_per_layer_and_task(study):
    rows, _ = study
    diag = plotdata.diagnostics(reported(rows))
    k0 = diag.filter(pl.col("kind") == "interference", pl.col("block") == 0, pl.col("projection") == "k")
    assert set(k0["label"]) == {"Janus-LoRA", "Janus-LoRA (OE+DML)"}  # with and without GR
    danger = diag.filter(pl.col("kind") == "danger", pl.col("label") == "Janus-LoRA", pl.col("seed") == 0)
    assert danger["task"].to_list() == [2, 3] and danger["value"].to_list() == pytest.approx([0.39, 0.38])  # 0.4 - 0.01 t, t = 1, 2 (0-based)


def test_diagnostics_tolerate_missing_keys_nan_and_bad_json():
    per_task = [{}, {"interference": {"blocks.2.k": float("nan"), "blocks.2.v": 0.5, "head": 1.0}},
                {"danger": None, "own_center": 0.6}]
    rows = results_frame([make_row("janus", diagnostics=json.dumps(per_task)),
                          make_row("janus", seed=1, diagnostics="not json"), make_row("inflora", diagnostics="[]")])
    diag = plotdata.diagnostics(rows)
    assert diag.select("task", "kind", "block", "projection", "value").rows() == [
        (2, "interference", 2, "v", 0.5), (3, "own_center", None, None, 0.6)]


def test_search_history_and_spearman_importance(study):
    rows, _ = study
    history = plotdata.search_history(rows)
    assert history["trial_id"].to_list() == ["s0", "s1", "s2", "s3", "s9"]
    assert history["best_so_far"].to_list() == [50.0, 58.0, 61.0, 61.0, 61.0]
    importance = plotdata.parameter_importance(rows)
    assert importance.select("param", "n").rows() == [("optim.lr", 4)]
    assert importance["rho"].item() == pytest.approx(0.4)  # ranks (1,2,3,4) vs (1,3,4,2)


def test_one_colour_per_method_and_the_seed_count_in_titles():
    from analysis.plots import color, seeds_note

    assert seeds_note([3, 3]) == "3 seeds" and seeds_note([2, 3]) == "2-3 seeds" and seeds_note([1]) == "1 seed"
    assert color(0) != color(1) and color(3) == color(3)


def test_danger_reference_lines_are_in_the_legend_without_stretching_the_axis():
    from analysis.plots import danger_figure

    series = pl.DataFrame({"label": ["Janus-LoRA"] * 4, "label_order": [0] * 4,
                           "kind": ["danger", "danger", "own_center", "own_center"], "task": [2, 3, 2, 3],
                           "mean": [0.20, 0.25, 0.80, 0.82], "std": [0.01, 0.01, 0.01, 0.01]})
    danger_axes, own_axes = danger_figure(series, "Digits (T=5)", "3 seeds").axes
    assert danger_axes.get_ylim()[1] < 0.5                     # the data range, not up to the 0.5 line
    assert any("0.5" in t.get_text() for t in danger_axes.get_legend().get_texts())
    assert any("0.7" in t.get_text() for t in own_axes.get_legend().get_texts())
    assert "3 seeds" in danger_axes.figure.get_suptitle()
