"""ImageNet-100: PODNet subset (first 100 sorted wnids) or a class-list file (docs/protocol.md §1.5)."""

import numpy as np
import pytest

from janus.data import build_scenario
from janus.errors import UserError


def test_first_100_sorted_wnids_of_a_full_imagenet_tree(fx, tmp_path):
    wnids = [f"n{k:08d}" for k in range(101)]
    fx.make_imagenet_tree(tmp_path / "imagenet", wnids[::-1], train_per_class=1, val_per_class=1)
    cfg = fx.config(dataset="imagenet100", root=str(tmp_path), tasks=10, val_fraction=0.0)
    scenario = build_scenario(cfg, seed=0)
    assert scenario.num_classes == 100 and scenario.class_names == tuple(wnids[:100])
    assert scenario.info["source"] == str(tmp_path / "imagenet")
    task = scenario.tasks[9]
    assert task.classes == tuple(range(90, 100)) and len(task.train) == 10 and len(task.test) == 10
    assert {task.test.source.paths[i].split("/")[0] for i in task.test.indices} == set(wnids[90:100])
    assert task.test.source.base == tmp_path / "imagenet" / "val"


def test_imagenet100_folder_and_class_list_order(fx, tmp_path):
    wnids = ["n01440764", "n01443537", "n01484850", "n01491361"]
    fx.make_imagenet_tree(tmp_path / "imagenet100", wnids, train_per_class=3, val_per_class=2)
    fx.make_imagenet_tree(tmp_path / "imagenet", wnids[:2])  # the dedicated subset folder wins
    listing = tmp_path / "classes.txt"
    listing.write_text("# my subset\nn01484850\n\nn01440764  # goldfish? tench\n")
    cfg = fx.config(dataset="imagenet100", root=str(tmp_path), tasks=2, class_list=str(listing),
                    val_fraction=0.0)
    scenario = build_scenario(cfg, seed=0)
    assert scenario.class_names == ("n01484850", "n01440764") and scenario.num_classes == 2
    first, second = scenario.tasks
    assert len(first.train) == 3 and len(first.test) == 2
    assert fx.color_class(first.test[0][0]) == 2 and first.test[0][1] == 0  # sorted position 2 -> label 0
    assert fx.color_class(second.test[1][0]) == 0 and second.test[1][1] == 1
    assert np.all(second.train.targets == 1)


def test_class_missing_from_val_is_reported(fx, tmp_path):
    fx.make_imagenet_tree(tmp_path / "imagenet100", ["n01440764", "n01443537"])
    listing = tmp_path / "classes.txt"
    listing.write_text("n01440764\nn09999999\n")
    cfg = fx.config(dataset="imagenet100", root=str(tmp_path), tasks=1, class_list=str(listing))
    with pytest.raises(UserError, match="1 classes have no folder in .*train \\(first: n09999999\\)"):
        build_scenario(cfg, seed=0)
    with pytest.raises(UserError, match="class list .* not found"):
        build_scenario(fx.config(dataset="imagenet100", root=str(tmp_path), class_list="nope.txt"), seed=0)
