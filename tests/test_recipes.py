"""The embedded default: one recipe for `python -m janus` and the study, and it learns."""

import numpy as np

from janus import recipes, run_experiment
from janus.__main__ import main
from study.cells import recipe


def test_single_run_and_study_cells_share_the_training_recipe():
    for method in recipes.METHODS:
        single = recipes.single_run(method)
        assert single["backbone.name"] == "tiny-fmnist" and single["eval.classifier"] == "nme"
        study = recipe(None, recipes.DATASET, recipes.BACKBONE, method)
        assert {k: single[k] for k in study} == study


def test_embedded_recipe_learns_on_synthetic_data_even_with_a_random_backbone():
    config = {**recipes.single_run("seq-lora"), "backbone.name": "test", "data.dataset": "synthetic",
              "data.tasks": 2, "optim.epochs": 2}
    result = run_experiment(config)
    assert np.diag(result.acc_matrix).min() > 80, result.acc_matrix


def test_embedded_recipe_learns_digits_on_a_briefly_pretrained_backbone(tmp_path, monkeypatch):
    """The embedded recipe on a tiny budget (2 tasks, 2 epochs, 30 images per class) with the tiny-fmnist
    architecture pretrained for 300 steps only (about 15 s) on the real Fashion-MNIST: the first task's
    accuracy is far above chance (20 % for its 5 classes). Needs the Fashion-MNIST files (Debian's
    dataset-fashion-mnist, which `make` installs where it can); skipped without them."""
    import pytest

    from janus import pretrain
    from janus.data.fashion_mnist import find_fashion_mnist_dir
    from janus.data.roots import resolve_root
    from janus.errors import UserError

    try:
        find_fashion_mnist_dir(resolve_root(None))
    except UserError:
        pytest.skip("Fashion-MNIST files not found (apt-get install dataset-fashion-mnist)")
    monkeypatch.setenv("JANUS_CACHE", str(tmp_path))
    short = pretrain.PretrainRecipe(steps=300, warmup_steps=30)
    monkeypatch.setitem(pretrain.TINY_BACKBONES, "tiny-fmnist-300", short)
    config = {**recipes.single_run("seq-lora"), "backbone.name": "tiny-fmnist-300", "data.tasks": 2,
              "optim.epochs": 2, "data.max_train_per_class": 30}
    result = run_experiment(config)
    assert result.acc_matrix[0, 0] > 45 and result.metrics["acc"] > 20, result.acc_matrix


def test_python_m_janus_prints_the_recipe_and_the_classifier(capsys):
    code = main(["--set", "backbone.name=test", "--set", "data.tasks=2", "--set", "optim.epochs=1",
                 "--set", "data.max_train_per_class=8", "--set", "method.name=seq-lora"])
    out = capsys.readouterr().out
    assert code == 0
    assert "seq-lora on digits (2 tasks), backbone test, classifier: NME on class prototypes" in out
    assert "task 2/2" in out and "ACC" in out
