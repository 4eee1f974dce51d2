"""Missing data gives one clear line naming the layout and the fix; the data root resolution order."""

import pytest

from janus.data import build_scenario
from janus.data.roots import resolve_root
from janus.errors import UserError


@pytest.mark.parametrize("dataset, layout", [
    ("cifar100", "cifar-100-python/{train,test,meta}"),
    ("imagenet-r", "imagenet-r/<wnid>/*.jpg"),
    ("imagenet100", "imagenet100/{train,val}/<wnid>/"),
    ("domainnet", "domainnet/<domain>/<class>/*.jpg"),
])
def test_missing_dataset_is_one_line_user_error(fx, tmp_path, dataset, layout):
    with pytest.raises(UserError) as info:
        build_scenario(fx.config(dataset=dataset, root=str(tmp_path / "nowhere")), seed=0)
    message = str(info.value)
    assert "\n" not in message and layout in message
    assert "--data-root" in message and "JANUS_DATA" in message and str(tmp_path / "nowhere") in message


def test_root_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("JANUS_DATA", str(tmp_path / "env"))
    assert resolve_root(str(tmp_path / "cfg")) == tmp_path / "cfg"
    assert resolve_root(None) == tmp_path / "env"
    monkeypatch.delenv("JANUS_DATA")
    assert str(resolve_root(None)) == "data"


def test_env_root_is_used_when_config_has_none(fx, tmp_path, monkeypatch):
    fx.make_cifar(tmp_path / "env")
    monkeypatch.setenv("JANUS_DATA", str(tmp_path / "env"))
    scenario = build_scenario(fx.config(dataset="cifar100", tasks=2), seed=0)
    assert scenario.info["root"] == str(tmp_path / "env") and scenario.num_classes == 4
