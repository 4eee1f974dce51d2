"""Unreadable and empty files: one line naming the file, or skipped and counted with data.skip_unreadable."""

import pytest

from janus.data import build_scenario
from janus.errors import UserError


def _tree(fx, tmp_path):
    fx.make_imagenet_r(tmp_path, {"n01": 10, "n02": 10})
    return next((tmp_path / "imagenet-r" / "n01").glob("*.jpg"))


@pytest.mark.parametrize("damage", [b"", b"not a jpeg at all"])
def test_an_unreadable_image_is_named(fx, tmp_path, damage):
    bad = _tree(fx, tmp_path)
    bad.write_bytes(damage)
    with pytest.raises(UserError, match=r"1 unreadable image file\(s\) in the imagenet-r .*data.skip_unreadable"):
        build_scenario(fx.config(dataset="imagenet-r", root=str(tmp_path), tasks=1), seed=0)


def test_skip_unreadable_skips_and_counts(fx, tmp_path):
    _tree(fx, tmp_path).write_bytes(b"junk")
    scenario = build_scenario(fx.config(dataset="imagenet-r", root=str(tmp_path), tasks=1, skip_unreadable=True),
                              seed=0)
    task = scenario.tasks[0]
    assert sum(scenario.info["skipped_unreadable"].values()) == 1
    assert len(task.train) + len(task.val) + len(task.test) == 19


def test_an_empty_class_folder_is_named(fx, tmp_path):
    fx.make_imagenet_r(tmp_path, {"n01": 10, "n02": 10})
    for image in (tmp_path / "imagenet-r" / "n02").glob("*.jpg"):
        image.write_bytes(b"")
    with pytest.raises(UserError, match="no training image, the first 'n02'|unreadable"):
        build_scenario(fx.config(dataset="imagenet-r", root=str(tmp_path), tasks=1, skip_unreadable=True), seed=0)
