"""ImageNet-R: unsplit tree, seeded stratified split written once, CODA-Prompt YAML split (docs/protocol.md §1.3)."""

import json

import numpy as np
import pytest
import yaml

from janus.data import build_scenario
from janus.errors import UserError

COUNTS = {"n01443537": 10, "n01484850": 5, "n01494475": 7, "n02165456": 6}  # sorted order = ImageFolder ids


def scenario_for(fx, root, seed=0, **kw):
    base = {"dataset": "imagenet-r", "root": str(root), "tasks": 2, "val_fraction": 0.0}
    base.update(kw)
    return build_scenario(fx.config(**base), seed=seed)


def all_files(scenario, split):
    return [getattr(t, split).source.paths[i] for t in scenario.tasks for i in getattr(t, split).indices]


def test_seeded_split_is_stratified_written_once_and_reused(fx, tmp_path):
    base = fx.make_imagenet_r(tmp_path, COUNTS)
    scenario = scenario_for(fx, tmp_path)
    split_file = base / "split_seed0.json"
    assert scenario.info["split_file"] == str(split_file) and scenario.info["split_created"] is True
    written = json.loads(split_file.read_text())
    train, test = all_files(scenario, "train"), all_files(scenario, "test")
    assert sorted(train) == sorted(written["train"]) and sorted(test) == sorted(written["test"])
    assert not set(train) & set(test) and len(train) + len(test) == sum(COUNTS.values())
    per_class_test = [sum(p.startswith(w) for p in test) for w in sorted(COUNTS)]
    assert per_class_test == [2, 1, 1, 1]  # round(0.2 n), at least one
    assert all((base / p).is_file() for p in train + test)  # files are never moved

    again = scenario_for(fx, tmp_path, class_order="seeded", seed=4)
    assert again.info["split_created"] is False
    assert sorted(all_files(again, "test")) == sorted(test)  # run seed and class order do not re-split
    written["train"], written["test"] = written["train"][1:], written["test"] + written["train"][:1]
    split_file.write_text(json.dumps(written))
    assert sorted(all_files(scenario_for(fx, tmp_path), "test")) == sorted(written["test"])  # read, not redrawn


def test_other_split_seed_gives_another_split_file(fx, tmp_path):
    base = fx.make_imagenet_r(tmp_path, COUNTS)
    first = all_files(scenario_for(fx, tmp_path), "test")
    second = all_files(scenario_for(fx, tmp_path, split_seed=1), "test")
    assert (base / "split_seed1.json").is_file() and sorted(first) != sorted(second)


def test_labels_are_imagefolder_ids(fx, tmp_path):
    fx.make_imagenet_r(tmp_path, COUNTS)
    scenario = scenario_for(fx, tmp_path, class_order="seeded", order_seed=1)
    assert scenario.class_names == tuple(sorted(COUNTS)[c] for c in scenario.class_order)
    for task in scenario.tasks:
        for i in range(len(task.test)):
            x, y = task.test[i]
            assert x.shape == (3, 16, 16)
            assert fx.color_class(x) == scenario.class_order[y]  # pixels of folder k carry label pos(k)


def write_coda_yaml(path, files, labels):
    path.write_text(yaml.safe_dump({"data": [f"data/imagenet-r/{f}" for f in files], "targets": labels}))


def test_coda_yaml_split_is_used_and_label_mapping_recorded(fx, tmp_path):
    fx.make_imagenet_r(tmp_path, COUNTS)
    wnids = sorted(COUNTS)
    yaml_label = {w: 3 - k for k, w in enumerate(wnids)}  # YAML ids differ from ImageFolder ids
    train = [f"{w}/art_{i}.jpg" for w in wnids for i in range(1, COUNTS[w])]
    test = [f"{w}/art_0.jpg" for w in wnids]
    splits = tmp_path / "splits"
    splits.mkdir()
    write_coda_yaml(splits / "imagenet-r_train.yaml", train, [yaml_label[f.split("/")[0]] for f in train])
    write_coda_yaml(splits / "imagenet-r_test.yaml", test, [yaml_label[f.split("/")[0]] for f in test])
    for given in (splits / "imagenet-r_train.yaml", splits):
        scenario = scenario_for(fx, tmp_path, split_file=str(given))
        assert sorted(all_files(scenario, "test")) == sorted(test)
        assert sorted(all_files(scenario, "train")) == sorted(train)
        assert scenario.info["split_label_to_imagefolder"] == {0: 3, 1: 2, 2: 1, 3: 0}
        task = scenario.tasks[0]
        assert [fx.color_class(task.test[i][0]) for i in range(len(task.test))] == task.test.targets.tolist()
    assert not (tmp_path / "imagenet-r" / "split_seed0.json").exists()


def test_inconsistent_yaml_labels_are_rejected(fx, tmp_path):
    fx.make_imagenet_r(tmp_path, COUNTS)
    files = ["n01443537/art_0.jpg", "n01484850/art_0.jpg"]
    write_coda_yaml(tmp_path / "r_train.yaml", files, [0, 0])
    write_coda_yaml(tmp_path / "r_test.yaml", files[:1], [0])
    with pytest.raises(UserError, match="label 0 is used for two classes"):
        scenario_for(fx, tmp_path, split_file=str(tmp_path / "r_train.yaml"))


def test_read_only_data_folder_writes_split_to_cache(fx, tmp_path, monkeypatch):
    from janus.data import imagenet_r

    base = fx.make_imagenet_r(tmp_path / "data", COUNTS)
    monkeypatch.setenv("JANUS_CACHE", str(tmp_path / "cache"))
    real_write = imagenet_r.write_json_atomic

    def refuse_data_folder(path, payload):
        if path.parent == base:
            raise PermissionError(13, "Permission denied", str(path))
        real_write(path, payload)

    monkeypatch.setattr(imagenet_r, "write_json_atomic", refuse_data_folder)
    with pytest.warns(UserWarning, match="not writable"):
        scenario = scenario_for(fx, tmp_path / "data")
    cached = scenario.info["split_file"]
    assert cached.startswith(str(tmp_path / "cache")) and not (base / "split_seed0.json").exists()
    again = scenario_for(fx, tmp_path / "data")
    assert again.info["split_file"] == cached and again.info["split_created"] is False


def test_stale_split_listing_missing_file_fails(fx, tmp_path):
    base = fx.make_imagenet_r(tmp_path, COUNTS)
    scenario_for(fx, tmp_path)
    (base / "n01443537" / "art_3.jpg").unlink()
    with pytest.raises(UserError, match="lists 1 images missing"):
        scenario_for(fx, tmp_path)


def test_task_sizes_follow_split(fx, tmp_path):
    fx.make_imagenet_r(tmp_path, COUNTS)
    scenario = scenario_for(fx, tmp_path, val_fraction=0.2)
    task = scenario.tasks[0]  # classes n01443537 (8 train) and n01484850 (4 train)
    assert np.bincount(task.val.targets).tolist() == [2, 1]
    assert np.bincount(task.train.targets).tolist() == [6, 3]
    assert not set(task.val.indices) & set(task.train.indices)
    val_files = {task.val.source.paths[i] for i in task.val.indices}
    assert not val_files & set(all_files(scenario, "test"))
