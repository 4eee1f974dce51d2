"""Figures from study results, as PNG and SVG (matplotlib, Agg).

    python -m analysis.plots --study NAME                  # -> <studies-dir>/NAME/report/figures/
    python -m analysis.plots --study NAME --out DIR

Per benchmark (data set, tasks, backbone):
* `curves-*`: pooled accuracy on the seen classes after each task, per method, mean ± std band over seeds;
* `heatmaps-*`: the mean accuracy matrix a[t][j] per method;
* `bars-*`: final ACC and BWT per method with ±std error bars;
* `interference-*` (Janus): the per-layer interference ‖ΔW X_past‖ / ‖X_past‖ of K and V, averaged over the tasks
  that have it and over seeds, one line per Janus variant (the paper's violation figure, with vs without GR);
* `danger-*` (Janus): the danger diagnostic (mean similarity to the nearest old prototype) and the
  own-centre similarity after each task, with the paper's 0.5 danger and 0.7 ideal lines.
Per searched method and benchmark (rows with stage "search"): `search-*`, the objective val_acc_all in the
order trials finished with the best so far, and parameter importance as |Spearman ρ| between each numeric
or boolean parameter and the objective (a rank correlation, not fANOVA: no interactions, no categoricals).

Every method (row label) has one colour in every figure (its paper-order rank in `analysis.names`), and
every per-benchmark title states the number of seeds behind the means.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis import names, plotdata
from analysis.aggregate import table_rows

FORMATS = ("png", "svg")
PALETTE = [f"C{i}" for i in range(10)] + ["#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79",
                                         "#637939", "#8c6d31", "#843c39", "#7b4173"]


def color(order: int) -> str:
    """The colour of the label with paper-order rank `order` (the same in every figure of a study)."""
    return PALETTE[int(order) % len(PALETTE)]


def seeds_note(counts) -> str:
    """'3 seeds', or '2-3 seeds' when the methods have different numbers of completed seeds."""
    counts = sorted({int(c) for c in counts if c is not None}) or [0]
    span = str(counts[0]) if counts[0] == counts[-1] else f"{counts[0]}-{counts[-1]}"
    return f"{span} seed{'s' if counts[-1] != 1 else ''}"


def save(figure: Figure, out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.{ext}" for ext in FORMATS]
    for path in paths:
        figure.savefig(path, dpi=120)
    return paths


def curve_figure(curves: pl.DataFrame, benchmark: str, seeds: str = "") -> Figure:
    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.add_subplot()
    for (label, order), line in curves.group_by("label", "label_order", maintain_order=True):
        x, mean = line["task"].to_numpy(), line["mean"].to_numpy()
        (drawn,) = axes.plot(x, mean, marker="o", label=label, color=color(order))
        std = line["std"].fill_null(0.0).to_numpy()
        axes.fill_between(x, mean - std, mean + std, alpha=0.2, color=drawn.get_color())
    axes.set(xlabel="task", ylabel="accuracy on seen classes (%)",
             title=f"{benchmark} (mean ± std over {seeds})" if seeds else benchmark)
    axes.set_xticks(sorted(set(curves["task"].to_list())))
    axes.legend(fontsize="small")
    return figure


def heatmap_figure(matrices: list[dict], benchmark: str) -> Figure:
    columns = min(4, len(matrices))
    rows = -(-len(matrices) // columns)
    figure = Figure(figsize=(3.4 * columns + 1, 3.2 * rows), layout="constrained")
    for index, item in enumerate(matrices):
        axes = figure.add_subplot(rows, columns, index + 1)
        matrix = item["matrix"]
        image = axes.imshow(np.ma.masked_invalid(matrix), vmin=0, vmax=100, cmap="viridis")
        if matrix.shape[0] <= 10:
            for (t, j), value in np.ndenumerate(matrix):
                if np.isfinite(value):
                    axes.text(j, t, f"{value:.0f}", ha="center", va="center", fontsize=7, color="w")
        ticks = range(matrix.shape[0])
        axes.set_xticks(ticks, [str(j + 1) for j in ticks])
        axes.set_yticks(ticks, [str(t + 1) for t in ticks])
        axes.set(xlabel="evaluated task j", ylabel="after task t")
        axes.set_title(f"{item['label']} (n={item['n']})", fontsize="small")
    figure.colorbar(image, ax=figure.axes, shrink=0.8, label="accuracy (%)")
    figure.suptitle(benchmark)
    return figure


def bar_figure(finals: pl.DataFrame, benchmark: str) -> Figure:
    """Final ACC and BWT per method: one colour per method, ±std error bars, the seed count in the title."""
    metrics = finals["metric"].unique(maintain_order=True).to_list()
    figure = Figure(figsize=(4 * len(metrics), 3.6), layout="constrained")
    for index, metric in enumerate(metrics):
        axes = figure.add_subplot(1, len(metrics), index + 1)
        part = finals.filter(pl.col("metric") == metric)
        positions = np.arange(part.height)
        axes.bar(positions, part["mean"].to_numpy(), yerr=part["std"].fill_null(0.0).to_numpy(), capsize=3,
                 color=[color(o) for o in part["label_order"]])
        axes.set_xticks(positions, part["label"].to_list(), rotation=30, ha="right")
        axes.axhline(0, color="k", linewidth=0.6)
        axes.set(ylabel=f"{names.METRICS.get(metric, metric)} (%)", title=names.METRICS.get(metric, metric))
    figure.suptitle(f"{benchmark} (mean ± std over {seeds_note(finals['n'])})")
    return figure


def interference_figure(layers: pl.DataFrame, benchmark: str, seeds: str = "") -> Figure:
    figure = Figure(figsize=(9, 3.6), layout="constrained")
    for index, projection in enumerate(("k", "v")):
        axes = figure.add_subplot(1, 2, index + 1)
        part = layers.filter(pl.col("projection") == projection)
        for (label, order), line in part.group_by("label", "label_order", maintain_order=True):
            axes.plot(line["block"].to_numpy(), line["mean"].to_numpy(), marker="o", label=label,
                      color=color(order))
        axes.set(xlabel="block", ylabel="‖ΔW X_past‖ / ‖X_past‖", title=f"{projection.upper()} interference")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.legend(fontsize="small")
    over = f"tasks and {seeds}" if seeds else "tasks and seeds"
    figure.suptitle(f"{benchmark}: interference per layer (mean over {over}; no GR = unprotected reference)")
    return figure


def danger_figure(series: pl.DataFrame, benchmark: str, seeds: str = "") -> Figure:
    figure = Figure(figsize=(9, 3.6), layout="constrained")
    titles = {"danger": ("nearest old prototype (danger)", 0.5), "own_center": ("own class centre", 0.7)}
    for index, (kind, (title, line_at)) in enumerate(titles.items()):
        axes = figure.add_subplot(1, 2, index + 1)
        lines = series.filter(pl.col("kind") == kind).group_by("label", "label_order", maintain_order=True)
        for (label, order), line in lines:
            x, mean = line["task"].to_numpy(), line["mean"].to_numpy()
            std = line["std"].fill_null(0.0).to_numpy()
            (drawn,) = axes.plot(x, mean, marker="o", label=label, color=color(order))
            axes.fill_between(x, mean - std, mean + std, alpha=0.2, color=drawn.get_color())
        low, high = axes.get_ylim()           # the reference line must not stretch the axis
        inside = low <= line_at <= high
        axes.axhline(line_at if inside else high, color="grey", linestyle="--", linewidth=0.8,
                     label=f"paper's {line_at} line" + ("" if inside else f" (above, at {line_at})"))
        axes.set_ylim(low, high)
        axes.set(xlabel="task", ylabel="mean cosine similarity", title=title)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.legend(fontsize="small")
    figure.suptitle(f"{benchmark}: feature invasion diagnostic" + (f" (mean ± std over {seeds})" if seeds else ""))
    return figure


def search_figure(history: pl.DataFrame, importance: pl.DataFrame, title: str) -> Figure:
    figure = Figure(figsize=(10, 3.8), layout="constrained")
    axes = figure.add_subplot(1, 2, 1)
    done = history.filter(pl.col("objective").is_not_null())
    axes.scatter(done["trial"].to_numpy(), done["objective"].to_numpy(), s=14, label="trial")
    axes.step(history["trial"].to_numpy(), history["best_so_far"].to_numpy(), where="post", label="best so far")
    failed = history.height - done.height
    axes.set(xlabel="trial (in finishing order)", ylabel="val_acc_all (%)",
             title="search history" + (f" ({failed} failed)" if failed else ""))
    axes.legend(fontsize="small")
    axes = figure.add_subplot(1, 2, 2)
    if importance.height:
        part = importance.reverse()
        colors = ["tab:green" if rho > 0 else "tab:red" for rho in part["rho"]]
        axes.barh(part["param"].to_list(), part["importance"].to_numpy(), color=colors)
    axes.set(xlabel="|Spearman ρ| with val_acc_all (green +, red −)", title="parameter importance")
    figure.suptitle(title)
    return figure


def _by_slug(frame: pl.DataFrame):
    if frame.height == 0:
        return []
    return [(slug, benchmark, part) for (slug, benchmark), part in frame.group_by("slug", "benchmark",
                                                                                  maintain_order=True)]


def _mean_std(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return (frame.group_by(keys, maintain_order=True)
            .agg(pl.col("value").mean().alias("mean"), pl.col("value").std().alias("std"))
            .sort("label_order", *keys[-1:]))


def seed_counts(rows: pl.DataFrame) -> dict[str, str]:
    """{benchmark slug: '3 seeds'} over the completed trials of each method there."""
    done = plotdata.labelled(rows)
    if done.height == 0:
        return {}
    counts = done.group_by("slug", "label").agg(pl.col("seed").n_unique().alias("n"))
    return {slug: seeds_note(part["n"]) for (slug,), part in counts.group_by("slug")}


def draw_benchmarks(rows: pl.DataFrame, out_dir: Path) -> list[Path]:
    paths: list[Path] = []
    seeds = seed_counts(rows)
    for slug, benchmark, part in _by_slug(plotdata.accuracy_curves(rows)):
        paths += save(curve_figure(part, benchmark, seeds.get(slug, "")), out_dir, f"curves-{slug}")
    matrices = plotdata.mean_matrices(rows)
    for slug in dict.fromkeys(item["slug"] for item in matrices):
        group = [item for item in matrices if item["slug"] == slug]
        paths += save(heatmap_figure(group, group[0]["benchmark"]), out_dir, f"heatmaps-{slug}")
    for slug, benchmark, part in _by_slug(plotdata.final_metrics(rows)):
        paths += save(bar_figure(part, benchmark), out_dir, f"bars-{slug}")
    return paths


def draw_janus(rows: pl.DataFrame, out_dir: Path) -> list[Path]:
    paths: list[Path] = []
    diagnostics, seeds = plotdata.diagnostics(rows), seed_counts(rows.filter(pl.col("method") == "janus"))
    for slug, benchmark, part in _by_slug(diagnostics):
        layers = part.filter(pl.col("kind") == "interference")
        if layers.height:
            layers = _mean_std(layers, ["label", "label_order", "projection", "block"])
            paths += save(interference_figure(layers, benchmark, seeds.get(slug, "")), out_dir, f"interference-{slug}")
        series = part.filter(pl.col("kind") != "interference")
        if series.height:
            series = _mean_std(series, ["label", "label_order", "kind", "task"])
            paths += save(danger_figure(series, benchmark, seeds.get(slug, "")), out_dir, f"danger-{slug}")
    return paths


def draw_search(rows: pl.DataFrame, out_dir: Path) -> list[Path]:
    history, importance = plotdata.search_history(rows), plotdata.parameter_importance(rows)
    paths: list[Path] = []
    if history.height == 0:
        return paths
    for key, part in history.group_by(plotdata.BASE_KEYS, maintain_order=True):
        method, dataset, tasks, backbone = key
        if importance.height:
            importance_of = importance.filter(*(pl.col(k) == v for k, v in zip(plotdata.BASE_KEYS, key)))
        else:
            importance_of = importance  # no numeric parameter varied, or too few trials
        title = (f"{names.method_name(method)}, {names.benchmark_name(dataset, tasks)}, "
                 f"{names.backbone_name(backbone)}")
        stem = plotdata.slug(f"search {method} {dataset} T{tasks} {backbone}")
        paths += save(search_figure(part, importance_of, title), out_dir, stem)
    return paths


def draw_all(rows: pl.DataFrame, out_dir: str | Path) -> list[Path]:
    """Every applicable figure for these trial rows, as PNG and SVG in out_dir; returns the paths.
    The per-benchmark and Janus figures show the rows the tables report (`aggregate.table_rows`)."""
    out_dir = Path(out_dir)
    reported, _ = table_rows(rows)
    return draw_benchmarks(reported, out_dir) + draw_janus(reported, out_dir) + draw_search(rows, out_dir)


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    from analysis.cli import study_parser
    from analysis.load import load_results, resolve_study

    matplotlib.use("Agg")
    parser = study_parser("python -m analysis.plots", __doc__)
    parser.add_argument("--out", metavar="DIR", help="where to write (default: <study folder>/report/figures, "
                        "the folder the study's own report uses)")
    args = parser.parse_args(argv)
    rows = load_results(args.study, args.studies_dir)
    out = Path(args.out) if args.out else resolve_study(args.study[0], args.studies_dir) / "report" / "figures"
    paths = draw_all(rows, out)
    print(f"wrote {len(paths)} files to {out}")
    return 0


if __name__ == "__main__":
    from analysis.cli import run

    sys.exit(run(main))
