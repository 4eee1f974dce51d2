"""One namespace per method: each method's own paper setting in the paper preset, the shared `gr` sub-config,
method-qualified keys, and the one alias table for renamed keys (docs/method.md §9.3)."""

import pytest

from janus.config import ExperimentConfig
from janus.errors import UserError
from janus.methods import build_options, resolve_config
from study.cells import build_cells
from study.cli import parse_settings


def paper_cells(tmp_path, methods: str, dataset: str = "imagenet-r", extra: tuple = ()):
    settings = parse_settings(["--studies-dir", str(tmp_path), "--backbone", "dino", "--dataset", dataset,
                               "--method", methods, "--preset", "paper", "--ablation", "off", *extra])
    return {c.method: resolve_config(ExperimentConfig.from_dict(c.with_seed(0))) for c in build_cells(settings)}


def test_paper_preset_gives_lora_drs_its_own_triplet_margin_on_imagenet_r(tmp_path):
    cells = paper_cells(tmp_path, "janus,lora-drs")
    drs, janus = cells["lora-drs"].method.params, cells["janus"].method.params
    assert drs["triplet_margin"] == 2.0 and drs["triplet_weight"] == 0.2   # LoRA-DRS's ImageNet-R setting
    assert janus["margin"] == 0.3 and janus["lambda_dml"] == 0.2 and janus["threshold"] == 0.98


def test_paper_preset_gives_inflora_and_lora_gpm_their_imagenet_r_threshold(tmp_path):
    imr = paper_cells(tmp_path, "inflora,lora-gpm")
    assert imr["inflora"].method.params["threshold"] == 0.98 and imr["lora-gpm"].method.params["threshold"] == 0.98
    cifar = paper_cells(tmp_path / "c", "inflora,lora-drs", dataset="cifar100")
    assert cifar["inflora"].method.params["threshold"] == 0.95
    assert cifar["lora-drs"].method.params["triplet_margin"] == 1.0


def test_a_qualified_set_reaches_only_its_method(tmp_path):
    cells = paper_cells(tmp_path, "janus,lora-drs", extra=("--set", "method.janus.margin=0.1",
                                                            "--set", "method.gr.ridge=0.01"))
    assert cells["janus"].method.params["margin"] == 0.1
    assert cells["lora-drs"].method.params["triplet_margin"] == 2.0
    # an unqualified option reaches every method that has it: the same name is the same knob
    assert cells["janus"].method.params["gr"]["ridge"] == cells["lora-drs"].method.params["gr"]["ridge"] == 0.01


@pytest.mark.parametrize("method", ["janus", "lora-gpm", "lora-drs"])
def test_the_gr_sub_config_has_the_same_names_in_every_method(method):
    params = resolve_config(ExperimentConfig.from_dict({"method.name": method})).method.params
    assert set(params["gr"]) == {"enabled", "variant", "ridge", "balance", "hook"}
    assert params["gr"]["enabled"] is (method == "janus")   # GR is Janus's; a plug-in for the others


@pytest.mark.parametrize("old, new, value", [
    ("method.gr", "method.gr.enabled", False), ("method.gr_variant", "method.gr.variant", "strict"),
    ("method.gr_ridge", "method.gr.ridge", 0.01), ("method.gr_balance", "method.gr.balance", 0.0),
    ("method.gr_on", "method.gr.hook", "grad"), ("method.eps_start", "method.threshold", 0.9),
    ("method.eps_end", "method.threshold_end", 0.99), ("method.energy_criterion", "method.criterion", "eig_sq"),
])
def test_old_flat_keys_keep_working_through_the_alias_table(old, new, value):
    flat = resolve_config(ExperimentConfig.from_dict({"method.name": "janus", old: value})).to_flat()
    assert flat[new] == value


def test_lora_drs_old_margin_key_moves_only_when_qualified():
    flat = resolve_config(ExperimentConfig.from_dict({"method.name": "lora-drs",
                                                      "method.lora-drs.margin": 2.0})).to_flat()
    assert flat["method.triplet_margin"] == 2.0
    with pytest.raises(UserError, match="triplet_margin"):      # an unqualified margin is Janus's knob
        build_options("lora-drs", {"margin": 2.0})


def test_an_option_of_another_method_is_a_clear_error():
    with pytest.raises(UserError, match="option of method lora-drs, but method.name is janus"):
        build_options("janus", {"lora-drs": {"triplet_margin": 2.0}})


def test_gr_switch_and_settings_combine_in_either_order():
    for raw in ({"method.gr": True, "method.gr.ridge": 0.5}, {"method.gr.ridge": 0.5, "method.gr": True}):
        gr = build_options("lora-gpm", ExperimentConfig.from_dict({"method.name": "lora-gpm", **raw}).method.params).gr
        assert gr.enabled and gr.ridge == 0.5 and gr.balance == 1e-2


def test_the_ablation_adds_lora_gpm_at_janus_energy_rule_for_the_oe_vs_gpm_table(tmp_path):
    settings = parse_settings(["--studies-dir", str(tmp_path), "--backbone", "test",
                               "--method", "janus,lora-gpm", "--ablation", "on"])
    gpm = [resolve_config(ExperimentConfig.from_dict(c.with_seed(0))).method.params
           for c in build_cells(settings) if c.method == "lora-gpm"]
    janus = resolve_config(ExperimentConfig.from_dict({"method.name": "janus"})).method.params
    assert [(p["threshold"], p["criterion"]) for p in gpm] == [(0.95, "eig_sq"),
                                                               (janus["threshold"], janus["criterion"])]
