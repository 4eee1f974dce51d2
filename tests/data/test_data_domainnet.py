"""DomainNet: official folders and <domain>_{train,test}.txt lists, configurable domains (docs/protocol.md §1.4)."""

import pytest

from janus.data import build_scenario
from janus.errors import UserError

CLASSES = ["aircraft_carrier", "airplane", "alarm_clock", "ambulance"]


def test_pools_chosen_domains_from_official_lists(fx, tmp_path):
    fx.make_domainnet(tmp_path, ("clipart", "quickdraw", "real"), CLASSES, train=3, test=1)
    cfg = fx.config(dataset="domainnet", root=str(tmp_path), tasks=2, val_fraction=0.0,
                    domains=("clipart", "real"), domainnet_crop_scale=(0.7, 1.0))
    scenario = build_scenario(cfg, seed=0)
    assert scenario.num_classes == 4 and scenario.class_names == tuple(CLASSES)
    assert scenario.info["domains"] == ["clipart", "real"]
    task = scenario.tasks[1]
    files = [task.train.source.paths[i] for i in task.train.indices]
    assert len(files) == 2 * 2 * 3 and {f.split("/")[0] for f in files} == {"clipart", "real"}
    assert all(f.split("/")[1] in CLASSES[2:] for f in files)
    assert len(task.test) == 2 * 2
    assert task.train.transform.transforms[0].scale == (0.7, 1.0)
    for i in range(len(task.test)):
        x, y = task.test[i]
        assert x.shape == (3, 16, 16) and fx.color_class(x) == y


def test_default_domains_need_all_six_lists(fx, tmp_path):
    fx.make_domainnet(tmp_path, ("clipart",), CLASSES)
    cfg = fx.config(dataset="domainnet", root=str(tmp_path), tasks=2)
    with pytest.raises(UserError, match="infograph_train.txt not found"):
        build_scenario(cfg, seed=0)


def test_unknown_domain_and_bad_list_line(fx, tmp_path):
    base = fx.make_domainnet(tmp_path, ("clipart",), CLASSES)
    with pytest.raises(UserError, match="unknown DomainNet domains \\['photo'\\]; choose from: clipart"):
        build_scenario(fx.config(dataset="domainnet", root=str(tmp_path), domains=("photo",)), seed=0)
    (base / "clipart_test.txt").write_text("clipart/airplane/x.jpg\n")
    with pytest.raises(UserError, match="clipart_test.txt:1: expected"):
        build_scenario(fx.config(dataset="domainnet", root=str(tmp_path), domains=("clipart",)), seed=0)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd", "clipart/../../outside.jpg"])
def test_list_entries_outside_the_data_root_are_rejected(fx, tmp_path, bad):
    from janus.data.domainnet import read_lists

    base = tmp_path / "domainnet"
    base.mkdir()
    (base / "clipart_train.txt").write_text(f"clipart/a/1.jpg 0\n{bad} 1\n")
    with pytest.raises(UserError, match=r"clipart_train.txt:2: .* points outside the data set folder"):
        read_lists(base, ("clipart",), "train", tmp_path)
    (base / "clipart_train.txt").write_text("clipart/a/1.jpg 0\nclipart/b/../a/2.jpg 1\n")
    assert read_lists(base, ("clipart",), "train", tmp_path)[0] == ["clipart/a/1.jpg", "clipart/b/../a/2.jpg"]
