"""Loading results.parquet files into the fixed schema, and the one-line errors for missing studies."""

import json

import pytest
from results_rows import make_row, results_frame

from analysis.load import RESULT_SCHEMA, load_results, load_study, resolve_study
from janus.errors import UserError


def write_study(root, name, rows, meta=None):
    folder = root / name
    folder.mkdir(parents=True)
    results_frame(rows).write_parquet(folder / "results.parquet")
    if meta is not None:
        (folder / "study.json").write_text(json.dumps(meta))
    return folder


def test_a_study_loads_with_the_fixed_schema_first_then_its_config(tmp_path):
    write_study(tmp_path, "s1", [make_row("janus", seed=0), make_row("inflora", seed=1, status="failed")])
    frame = load_results(["s1"], tmp_path)
    assert list(frame.schema.items())[: len(RESULT_SCHEMA)] == list(RESULT_SCHEMA.items())
    assert {"cfg.optim.lr", "cfg.method.name"} <= set(frame.columns)
    assert frame["status"].to_list() == ["completed", "failed"] and frame["acc"].to_list()[1] is None
    assert frame["acc_matrix"][0].to_list()[0][1] != frame["acc_matrix"][0].to_list()[0][1]  # NaN above diagonal


def test_two_studies_pool_with_their_config_columns_unioned(tmp_path):
    write_study(tmp_path, "a", [make_row("janus", cfg={"cfg.method.oe": True})])
    write_study(tmp_path, "b", [make_row("lora-gpm", cfg={"cfg.method.gr": True})])
    frame = load_results(["a", str(tmp_path / "b")], tmp_path)  # a name and a folder
    assert frame["method"].to_list() == ["janus", "lora-gpm"]
    assert frame["cfg.method.gr"].to_list() == [None, True] and frame["cfg.method.oe"].to_list() == [True, None]


def test_missing_optional_columns_are_null_and_missing_required_ones_fail(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    results_frame([make_row()]).drop("diagnostics_json", "peak_memory_mb").write_parquet(folder / "results.parquet")
    assert load_study(folder)["diagnostics_json"].to_list() == [None]
    results_frame([make_row()]).drop("seed").write_parquet(folder / "results.parquet")
    with pytest.raises(UserError, match="lacks the column"):
        load_study(folder)


def test_missing_or_empty_studies_fail_with_one_clear_line(tmp_path):
    with pytest.raises(UserError, match=r"study 'nope' not found: no folder .*nope \(set --studies-dir"):
        resolve_study("nope", tmp_path)
    (tmp_path / "fresh").mkdir()
    with pytest.raises(UserError, match="no results.parquet in .* has the study run yet"):
        load_results(["fresh"], tmp_path)
    folder = tmp_path / "empty"
    folder.mkdir()
    results_frame([make_row()]).clear().write_parquet(folder / "results.parquet")
    with pytest.raises(UserError, match="has no trials yet"):
        load_results(["empty"], tmp_path)
    (folder / "results.parquet").write_text("not parquet")
    with pytest.raises(UserError, match="cannot read"):
        load_study(folder)
