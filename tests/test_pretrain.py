"""janus.pretrain: deterministic pretraining, the cache (hit, miss, corrupt, other recipe), the backbone name."""

import gzip
import json
import struct

import numpy as np
import pytest
import torch

from janus import pretrain
from janus.backbone import build_backbone, data_mean_std
from janus.config import BackboneConfig
from janus.errors import UserError

TINY = pretrain.PretrainRecipe(steps=3, batch_size=8, warmup_steps=1,
                               model_kwargs={"patch_size": 8, "embed_dim": 16, "depth": 1, "num_heads": 2})


def write_idx(path, array: np.ndarray) -> None:
    """An IDX file as the dataset's distribution writes it: magic (0x08 = uint8, rank), big-endian dims."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fashion(tmp_path, monkeypatch):
    """Fake Fashion-MNIST files under a data root, an empty cache, and a 3-step recipe named 'tiny-test'."""
    rng = np.random.default_rng(0)
    base = tmp_path / "data" / "fashion-mnist"
    base.mkdir(parents=True)
    for split, n in (("train", 40), ("t10k", 20)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, (n, 28, 28)) + labels[:, None, None] * 19
        write_idx(base / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(base / f"{split}-labels-idx1-ubyte.gz", labels)
    monkeypatch.setenv("JANUS_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("JANUS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(pretrain.TINY_BACKBONES, "tiny-test", TINY)
    return tmp_path


def test_pretraining_is_deterministic_for_a_seed(fashion):
    first = pretrain.pretrain(TINY, progress=None)
    second = pretrain.pretrain(TINY, progress=None)
    other = pretrain.pretrain(pretrain.PretrainRecipe(**{**TINY.__dict__, "seed": 1}), progress=None)
    assert first.state_dict.keys() == second.state_dict.keys()
    assert all(torch.equal(first.state_dict[k], second.state_dict[k]) for k in first.state_dict)
    assert not torch.equal(first.state_dict["blocks.0.attn.qkv.weight"], other.state_dict["blocks.0.attn.qkv.weight"])
    assert "head.weight" not in first.state_dict and 0 <= first.test_accuracy <= 100


def test_cache_miss_builds_then_hits(fashion):
    lines = []
    path = pretrain.ensure_backbone("tiny-test", progress=lines.append)
    assert path.is_file() and path.parent == fashion / "cache" / "backbones"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["recipe"]["steps"] == 3 and meta["data"]["dataset"] == "fashion-mnist" and "torch" in meta["versions"]
    assert any("step 3/3" in line for line in lines)
    stamp = path.stat().st_mtime_ns
    lines.clear()
    assert pretrain.ensure_backbone("tiny-test", progress=lines.append) == path
    assert lines == [] and path.stat().st_mtime_ns == stamp


def test_corrupt_cache_file_is_rebuilt(fashion):
    path = pretrain.ensure_backbone("tiny-test", progress=None)
    path.write_bytes(b"not a safetensors file")
    lines = []
    assert pretrain.ensure_backbone("tiny-test", progress=lines.append) == path
    assert any("rebuilding" in line and "unreadable" in line for line in lines)
    from safetensors.torch import load_file

    assert "blocks.0.attn.qkv.weight" in load_file(str(path))


def test_missing_cache_without_build_names_the_command(fashion):
    with pytest.raises(UserError, match="python -m janus.pretrain --backbone tiny-test"):
        pretrain.ensure_backbone("tiny-test", build=False)


def test_a_changed_recipe_gets_its_own_cache_file(fashion):
    other = pretrain.PretrainRecipe(**{**TINY.__dict__, "lr": 2e-3})
    assert pretrain.cached_weights_path("x", TINY) != pretrain.cached_weights_path("x", other)


def test_backbone_name_loads_the_cached_weights_and_their_normalisation(fashion):
    path = pretrain.ensure_backbone("tiny-test", progress=None)
    model = build_backbone(BackboneConfig(name="tiny-test"), img_size=32)
    from safetensors.torch import load_file

    saved = load_file(str(path))
    assert torch.equal(model.state_dict()["blocks.0.attn.qkv.weight"], saved["blocks.0.attn.qkv.weight"])
    assert data_mean_std(model) == ((TINY.mean,) * 3, (TINY.std,) * 3)
    assert not any(p.requires_grad for p in model.parameters()) and model.num_features == 16
    with pytest.raises(UserError, match="data.image_size=32"):
        build_backbone(BackboneConfig(name="tiny-test"), img_size=64)
