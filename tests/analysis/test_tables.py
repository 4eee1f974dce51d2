"""Tables from synthetic results with known numbers: exact Markdown and LaTeX, mean ± std (ddof=1), the
bold best, the seed count and the exclusion of failed or unfinished trials."""

import polars as pl
import pytest
from results_rows import make_row, results_frame

from analysis.aggregate import aggregate, table_rows
from analysis.format import to_csv, to_html, to_latex, to_markdown
from analysis.tables import build_tables


def known_rows() -> list[dict]:
    """Janus-LoRA: 3 seeds (+1 unfinished); InfLoRA: 2 seeds (+1 failed), on ImageNet-R T=10."""
    rows = [make_row("janus", "imagenet-r", 10, seed=s, acc=a, maa=m, bwt=b)
            for s, a, m, b in [(0, 75, 81, -6), (1, 76, 81.5, -6.5), (2, 77, 82, -7)]]
    rows.append(make_row("janus", "imagenet-r", 10, seed=3, status="unfinished"))
    rows += [make_row("inflora", "imagenet-r", 10, seed=s, acc=a, maa=80, bwt=b) for s, a, b in [(0, 73, -5), (1, 74, -6)]]
    rows.append(make_row("inflora", "imagenet-r", 10, seed=2, status="failed"))
    return rows


def main_table():
    (table,) = build_tables(results_frame(known_rows()))
    return table


EXPECTED_MARKDOWN = """\
**Main results (ACC / MAA / BWT, %)**

| Method     | ImageNet-R (T=10) ACC | ImageNet-R (T=10) MAA |  ImageNet-R (T=10) BWT |
| :--------- | --------------------: | --------------------: | ---------------------: |
| InfLoRA    |    73.50 ± 0.71 (n=2) |    80.00 ± 0.00 (n=2) | **-5.50** ± 0.71 (n=2) |
| Janus-LoRA |      **76.00** ± 1.00 |      **81.50** ± 0.50 |           -6.50 ± 0.50 |

Mean ± sample standard deviation (ddof=1) over 3 seeds; a cell marked (n=k) has k. Best per column in bold. \
Excluded: 2 failed or unfinished trials (InfLoRA, ImageNet-R (T=10): 1; Janus-LoRA, ImageNet-R (T=10): 1). Prediction: per-task linear heads.
"""

EXPECTED_LATEX = r"""% needs \usepackage{booktabs} (and amssymb, pifont for check marks and circled numbers)
\begin{table}[t]
\centering
\caption{Main results (ACC / MAA / BWT, \%). Mean $\pm$ sample standard deviation (ddof=1) over 3 seeds; a cell marked (n=k) has k. Best per column in bold. Excluded: 2 failed or unfinished trials (InfLoRA, ImageNet-R (T=10): 1; Janus-LoRA, ImageNet-R (T=10): 1). Prediction: per-task linear heads.}
\label{tab:main}
\begin{tabular}{l ccc}
\toprule
 & \multicolumn{3}{c}{ImageNet-R (T=10)} \\
\cmidrule(lr){2-4}
Method & ACC & MAA & BWT \\
\midrule
InfLoRA & $73.50_{0.71}^{n=2}$ & $80.00_{0.00}^{n=2}$ & $\mathbf{-5.50}_{0.71}^{n=2}$ \\
Janus-LoRA & $\mathbf{76.00}_{1.00}$ & $\mathbf{81.50}_{0.50}$ & $-6.50_{0.50}$ \\
\bottomrule
\end{tabular}
\end{table}
"""


def test_main_table_markdown_is_exact():
    assert to_markdown(main_table()) == EXPECTED_MARKDOWN


def test_main_table_latex_is_exact():
    assert to_latex(main_table()) == EXPECTED_LATEX


def test_aggregate_uses_sample_std_and_counts_exclusions():
    rows = [make_row("seq-lora", seed=s, acc=a) for s, a in enumerate([1.0, 2.0, 3.0, 4.0])]
    rows.append(make_row("seq-lora", seed=4, status="failed"))
    acc = aggregate(results_frame(rows)).filter(pl.col("metric") == "acc").row(0, named=True)
    assert acc["mean"] == pytest.approx(2.5)
    assert acc["std"] == pytest.approx(1.2909944487)  # ddof=1; ddof=0 would give 1.118
    assert (acc["n"], acc["n_excluded"]) == (4, 1)


def test_one_seed_has_no_std_and_says_so():
    table = build_tables(results_frame([make_row("janus", acc=70.0), make_row("inflora", acc=71.0)]))[0]
    text = to_markdown(table)
    assert "| Janus-LoRA |                70.00 |" in text and "**71.00**" in text and "±" not in text.split("\n\n")[1]
    assert "One seed per cell (no standard deviation)." in text


def test_all_failed_cells_show_a_dash_and_are_counted():
    rows = [make_row("janus", seed=s, acc=70.0 + s) for s in range(2)]
    rows += [make_row("inflora", seed=s, status="failed") for s in range(2)]
    text = to_markdown(build_tables(results_frame(rows))[0])
    assert "| InfLoRA    |                    — |" in text
    assert "Excluded: 2 failed or unfinished trials (InfLoRA, ImageNet-R (T=3): 2)." in text


def test_different_configs_are_not_averaged_together():
    rows = [make_row("janus", seed=s, acc=70.0 + s, cfg={"cfg.optim.lr": lr}) for s in range(2) for lr in (1e-3, 1e-4)]
    rows[0]["acc"] = 90.0
    table = build_tables(results_frame(rows))[0]
    assert set(table.cells["row"]) == {"Janus-LoRA [lr=0.001]", "Janus-LoRA [lr=0.0001]"}
    assert table.cells.filter(pl.col("metric") == "acc")["n"].to_list() == [2, 2]


def test_search_rows_stay_out_and_a_search_only_study_reports_its_best_trial():
    search = [make_row("janus", seed=0, stage="search", acc=60.0 + i, val_acc_all=v, trial_id=f"t{i}")
              for i, v in enumerate([50.0, 70.0, 60.0])]
    rows, note = table_rows(results_frame(search))
    assert rows["trial_id"].to_list() == ["t1"] and "best search trial" in note
    mixed, note = table_rows(results_frame([*search, make_row("janus", seed=0, stage="replicate")]))
    assert mixed["stage"].to_list() == ["replicate"] and note == ""


def ablation_rows() -> list[dict]:
    flags = [(False, False, False), (True, False, False), (True, True, False), (True, True, True)]
    return [make_row("janus", "imagenet-r", 10, seed=s, acc=60 + 5 * i + s, maa=70 + i, bwt=-20 + 4 * i,
                     cfg={"cfg.method.oe": oe, "cfg.method.gr": gr, "cfg.method.dml": dml})
            for i, (oe, gr, dml) in enumerate(flags) for s in range(2)]


def test_ablation_table_rows_follow_the_paper_with_check_marks():
    tables = {t.name: t for t in build_tables(results_frame(ablation_rows()))}
    lines = to_markdown(tables["ablation"]).splitlines()
    assert lines[2].startswith("|   | OE | GR | DML |")
    assert [line[:22] for line in lines[4:8]] == [
        "| ① |    |    |     | ", "| ③ | ✓  |    |     | ", "| ⑤ | ✓  | ✓  |     | ", "| ⑦ | ✓  | ✓  | ✓   | "]
    assert "**75.50** ± 0.71" in lines[7]
    latex = to_latex(tables["ablation"])
    assert r"\ding{178} & \checkmark & \checkmark & \checkmark & $\mathbf{75.50}_{0.71}$" in latex


def test_gr_plugin_and_oe_vs_gpm_bold_within_each_row():
    janus_oe = {"cfg.method.oe": True, "cfg.method.dml": False}  # OE alone (ablation ③)
    janus_rule = {"cfg.method.threshold": 0.97, "cfg.method.criterion": "eig"}  # Janus's default rule
    rows = [make_row(m, "cifar100", 10, seed=s, acc=a + s, bwt=b,
                     cfg={"cfg.method.gr": gr, "cfg.optim.epochs": 1, **(janus_oe if m == "janus" else janus_rule)})
            for m, gr, a, b in [("lora-gpm", False, 70, -9), ("lora-gpm", True, 72, -4), ("janus", False, 71, -6)]
            for s in range(2)]
    tables = {t.name: to_markdown(t).splitlines() for t in build_tables(results_frame(rows))}
    assert tables["gr_plugin"][2:5] == [
        ("| Method   | without GR ACC |   without GR MAA | without GR BWT |      with GR ACC |      with GR MAA |"
        "      with GR BWT |"),
        ("| :------- | -------------: | ---------------: | -------------: | ---------------: | ---------------: |"
        " ---------------: |"),
        ("| LoRA-GPM |   70.50 ± 0.71 | **80.00** ± 0.00 |   -9.00 ± 0.00 | **72.50** ± 0.71 | **80.00** ± 0.00 |"
        " **-4.00** ± 0.00 |")]
    assert tables["oe_vs_gpm"][4] == ("| CIFAR-100 (T=10), eig ≥ 0.97 | 70.50 ± 0.71 | **80.00** ± 0.00 |"
                                      " -9.00 ± 0.00 | **71.50** ± 0.71 | **80.00** ± 0.00 | **-6.00** ± 0.00 |")
    assert tables["oe_vs_gpm"][-1] == "Mean ± sample standard deviation (ddof=1) over 2 seeds. Best per row and metric in bold. Prediction: per-task linear heads."


def test_oe_vs_gpm_compares_only_runs_at_the_same_energy_rule():
    janus_oe = {"cfg.method.oe": True, "cfg.method.dml": False, "cfg.method.gr": False, "cfg.optim.epochs": 1}
    rows = [make_row("janus", "cifar100", 10, seed=s, cfg=janus_oe) for s in range(2)]
    rows += [make_row("lora-gpm", "cifar100", 10, seed=s, cfg={"cfg.optim.epochs": 1}) for s in range(2)]
    tables = {t.name for t in build_tables(results_frame(rows))}
    assert "oe_vs_gpm" not in tables   # eig ≥ 0.97 (Janus) vs eig_sq ≥ 0.95 (LoRA-GPM's default): no pair


def test_backbone_and_imagenet_r_tables_appear_only_with_their_dimension():
    one = {t.name for t in build_tables(results_frame(known_rows()))}
    assert one == {"main"}
    rows = known_rows() + [make_row("janus", "imagenet-r", 5, backbone="dino", seed=s, acc=70.0 + s) for s in range(2)]
    tables = {t.name: t for t in build_tables(results_frame(rows))}
    assert {"main", "imagenet_r", "backbones"} <= set(tables)
    assert set(tables["backbones"].cells["group"]) == {"Sup-21K, ImageNet-R (T=10)", "DINO, ImageNet-R (T=5)"}
    assert set(tables["imagenet_r"].cells["group"]) == {"T=10, Sup-21K", "T=5, DINO"}


def test_csv_and_html_carry_the_same_cells():
    table = main_table()
    csv = pl.read_csv(to_csv(table).encode())
    assert csv.height == 6 and csv.filter(pl.col("row") == "InfLoRA", pl.col("sub") == "ACC")["n"].item() == 2
    html = to_html(table)
    assert "<strong>76.00</strong> ± 1.00" in html and "ImageNet-R (T=10)" in html


def test_flag_defaults_match_the_methods_options():
    from analysis.aggregate import flag_defaults
    from janus.methods import method_class

    defaults = flag_defaults()
    assert defaults["janus"] == {"oe": True, "gr": True, "dml": True}
    assert defaults["lora-gpm"] == {"gr": False} and defaults["lora-drs"] == {"gr": False}
    assert "seq-lora" not in defaults and "inflora" not in defaults
    assert method_class("lora-gpm").Options().gr.enabled is False


def test_unset_flags_take_the_methods_defaults():
    rows = [make_row("janus", seed=0), make_row("lora-gpm", seed=0), make_row("inflora", seed=0),
            make_row("janus", seed=0, cfg={"cfg.method.gr": False}), make_row("lora-drs", seed=0, cfg={"cfg.method.gr": True})]
    agg = aggregate(results_frame(rows)).filter(pl.col("metric") == "acc")
    assert agg.select("method", "oe", "gr", "dml").rows() == [
        ("janus", True, True, True), ("lora-gpm", None, False, None), ("inflora", None, None, None),
        ("janus", True, False, True), ("lora-drs", None, True, None)]


def test_caption_names_the_classifier():
    import polars as pl

    from analysis.tables import classifier_note

    assert classifier_note(pl.DataFrame({"cfg.eval.classifier": ["nme", "nme"]})) == \
        "Prediction: NME on class prototypes."
    assert classifier_note(pl.DataFrame({"x": [1]})) == "Prediction: per-task linear heads."
    assert classifier_note(pl.DataFrame({"cfg.eval.classifier": ["nme", None]})) == \
        "Prediction: per-task linear heads / NME on class prototypes."


def test_paper_flag_on_a_benchmark_the_paper_does_not_cover_says_so():
    from analysis.tables import NO_PAPER_NUMBERS

    rows = [make_row("janus", "digits", 5, seed=s) for s in range(2)]
    tables = build_tables(results_frame(rows), paper=True)
    assert [t.name for t in tables] == ["main"] and NO_PAPER_NUMBERS in tables[0].notes
    assert NO_PAPER_NUMBERS not in build_tables(results_frame(rows))[0].notes
