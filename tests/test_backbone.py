import pytest
import torch
from safetensors.torch import save_file

from janus.backbone import BACKBONES, build_backbone, resolve_name
from janus.config import BackboneConfig
from janus.errors import UserError


def test_short_names_map_to_the_protocol_checkpoints():
    assert resolve_name("vit") == "vit_base_patch16_224.augreg_in21k"
    assert resolve_name("dino") == "vit_base_patch16_224.dino"
    assert resolve_name("sam") == "vit_base_patch16_224.sam_in1k"
    assert resolve_name("vit_small_patch16_224") == "vit_small_patch16_224"
    assert set(BACKBONES) >= {"vit", "vit-in1k", "dino", "sam", "test"}
    with pytest.raises(UserError, match="unknown backbone 'resnet9000'.*vit, vit-in1k, dino, sam, test"):
        resolve_name("resnet9000")


def test_test_backbone_is_frozen_and_returns_the_cls_feature():
    model = build_backbone(BackboneConfig(name="test"), img_size=32)
    assert not any(p.requires_grad for p in model.parameters())
    x = torch.rand(3, 3, 32, 32)
    features = model(x)
    tokens = model.forward_features(x)           # after the final norm
    torch.testing.assert_close(features, tokens[:, 0])
    assert features.shape == (3, model.num_features)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_local_weights_are_loaded(tmp_path, suffix):
    torch.manual_seed(123)
    source = build_backbone(BackboneConfig(name="test", pretrained=False), img_size=32)
    path = tmp_path / f"weights{suffix}"
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    save_file(state, path) if suffix == ".safetensors" else torch.save(state, path)
    torch.manual_seed(0)
    loaded = build_backbone(BackboneConfig(name="test", weights=str(path)), img_size=32)
    for key, value in source.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)


def test_missing_weights_offline_name_the_model_the_cache_and_the_option(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(UserError) as error:
        build_backbone(BackboneConfig(name="test_vit"), img_size=32)
    message = str(error.value)
    assert "'test_vit'" in message and "--weights" in message and "HF_HUB_OFFLINE" in message
    assert "\n" not in message
    with pytest.raises(UserError, match="does not exist"):
        build_backbone(BackboneConfig(name="test", weights=str(tmp_path / "nope.pth")))
