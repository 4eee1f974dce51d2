"""Recipes per preset, the study's cells, and the stage plans."""

import pytest

from janus.errors import UserError
from study.cells import build_cells, recipe
from study.cli import parse_settings
from study.stages import grid_plan, replicate_plan, search_plan


def test_embedded_recipe_is_the_single_run_recipe():
    from janus.recipes import single_run

    for backbone in ("tiny-fmnist", "test"):
        chosen = recipe(None, "digits", backbone, "seq-lora")
        assert chosen["data.image_size"] == 32 and chosen["eval.classifier"] == "nme"
        assert {k: v for k, v in single_run("seq-lora").items() if k in chosen} == chosen
    assert recipe(None, "digits", "test", "finetune")["optim.lr"] < chosen["optim.lr"]
    assert recipe(None, "digits", "dino", "seq-lora")["data.image_size"] == 224


def test_ablation_cells_are_the_seven_janus_rows(tmp_path):
    settings = parse_settings(["--studies-dir", str(tmp_path), "--backbone", "test", "--method", "janus,seq-lora",
                               "--ablation", "on"])
    cells = build_cells(settings)
    flags = [tuple(c.overrides.get(f"method.{k}") for k in ("oe", "gr.enabled", "dml")) for c in cells]
    assert [c.method for c in cells] == ["janus"] * 7 + ["seq-lora"]
    assert len(set(flags[:7])) == 7 and flags[6] == (True, True, True) and flags[0] == (False, False, False)
    assert flags[7] == (None, None, None)


def test_paper_recipe_follows_the_protocol():
    cifar = recipe("paper", "cifar100", "vit", "seq-lora")
    assert (cifar["optim.epochs"], cifar["optim.lr"], cifar["optim.batch_size"], cifar["lora.rank"]) == \
        (20, 5e-4, 128, 10)
    assert not any(k.startswith("method.") for k in cifar)  # seq-lora has no options of its own
    imr = recipe("paper", "imagenet-r", "dino", "janus")
    assert imr["optim.epochs"] == 50 and imr["method.janus.threshold"] == 0.98 and imr["data.image_size"] == 224
    domainnet = recipe("paper", "domainnet", "vit", "seq-lora")
    assert domainnet["optim.optimizer"] == "sgd" and domainnet["lora.rank"] == 30
    assert recipe("paper", "cifar100", "vit", "finetune")["optim.lr"] == 5e-5
    with pytest.raises(UserError, match="no protocol"):
        recipe("paper", "digits", "vit", "seq-lora")


def test_cells_are_typed_and_ordered(tmp_path):
    settings = parse_settings(["--studies-dir", str(tmp_path), "--method", "seq-lora,finetune",
                               "--set", "optim.epochs=2", "--set", "data.split_file=rel.yaml"])
    cells = build_cells(settings)
    assert [c.method for c in cells] == ["seq-lora", "finetune"]
    overrides = cells[0].overrides
    assert overrides["optim.epochs"] == 2 and overrides["data.tasks"] == 5
    assert overrides["data.split_file"].startswith("/")  # trials run elsewhere: paths are absolute


def test_stage_plans(tmp_path):
    import search_spaces

    settings = parse_settings(["--studies-dir", str(tmp_path), "--backbone", "test", "--method", "seq-lora",
                               "--seeds", "3"])
    cells = build_cells(settings)
    grid = grid_plan(cells, settings.seeds, {"optim.device": "cpu"})
    entries = grid.param_space["cell"]["grid_search"]
    assert [e["seed"] for e in entries] == [0, 1, 2] and all(e["optim.device"] == "cpu" for e in entries)
    search = search_plan(cells[0], search_spaces.load("seq_lora"), 0, {}, num_samples=8)
    assert search.name == "search-seq-lora-digits-test" and "optim.lr" in search.param_space
    replicate = replicate_plan(search, [{"optim.lr": 1e-3}], (0, 1))
    assert replicate.name == "replicate-seq-lora-digits-test" and replicate.stage == "replicate"
    assert len(replicate.param_space["cell"]["grid_search"]) == 2


def test_asha_grace_period_is_half_the_tasks(tmp_path):
    from study.stages import StagePlan
    from study.tuner import scheduler

    settings = parse_settings(["--studies-dir", str(tmp_path), "--search", "optuna", "--scheduler", "asha"])
    asha = scheduler(StagePlan("s", "search", {}, num_tasks=10), settings)
    assert min(rung for rung, _ in asha._brackets[0]._rungs) == 5 and asha._max_t == 10
