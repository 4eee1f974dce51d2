import pickle

import pytest
import torch

from janus.backbone import build_backbone
from janus.config import BackboneConfig, LoraConfig
from janus.errors import UserError
from janus.lora import LoRAQKV, Site, adapted_slices, inject_lora, lora_parameters, merged_lora


def random_lora(targets=("k", "v"), rank=3, scale=0.7, d=12):
    torch.manual_seed(0)
    layer = LoRAQKV(torch.nn.Linear(d, 3 * d), targets, rank, scale)
    for pairs in layer.adapters.values():
        torch.nn.init.normal_(pairs[-1].B)
    return layer


def test_output_equals_dense_reference_on_each_slice():
    layer = random_lora()
    x = torch.randn(5, 7, 12)
    w0, b0 = layer.base_layer.weight, layer.base_layer.bias
    dense = torch.cat([w0[:12], w0[12:24] + 0.7 * layer.adapters["k"][0].B @ layer.adapters["k"][0].A,
                       w0[24:] + 0.7 * layer.adapters["v"][0].B @ layer.adapters["v"][0].A])
    torch.testing.assert_close(layer(x), x @ dense.t() + b0)
    torch.testing.assert_close(layer(x)[..., :12], layer.base_layer(x)[..., :12])  # q untouched


def test_per_task_pairs_sum_and_freeze_the_old_ones():
    layer = random_lora(targets=("v",))
    layer.add_pairs()
    torch.nn.init.normal_(layer.adapters["v"][1].B)
    x = torch.randn(4, 12)
    pairs = layer.adapters["v"]
    delta = 0.7 * (pairs[0].B @ pairs[0].A + pairs[1].B @ pairs[1].A)
    expected = layer.base_layer(x) + torch.cat([torch.zeros(4, 24), x @ delta.t()], dim=1)
    torch.testing.assert_close(layer(x), expected)
    assert not pairs[0].A.requires_grad and pairs[1].A.requires_grad


def test_merge_equals_unmerged_and_unmerge_restores_the_base():
    layer = random_lora()
    x = torch.randn(3, 12)
    before, base_weight = layer(x), layer.base_layer.weight.clone()
    layer.merge()
    torch.testing.assert_close(layer(x), before)
    layer.unmerge()
    torch.testing.assert_close(layer.base_layer.weight, base_weight)
    torch.testing.assert_close(layer(x), before)


def test_injected_model_equals_base_model_at_init():
    torch.manual_seed(0)
    model = build_backbone(BackboneConfig(name="test"), img_size=32)
    x = torch.rand(2, 3, 32, 32)
    reference = model(x)
    modules = inject_lora(model, LoraConfig(rank=4))
    assert len(modules) == len(model.blocks) and all(isinstance(m, LoRAQKV) for m in modules.values())
    torch.testing.assert_close(model(x), reference)
    slices = adapted_slices(modules)
    assert [(s.block, s.target) for s in slices[:2]] == [(0, "k"), (0, "v")]
    assert len(lora_parameters(modules)) == 2 * 2 * len(model.blocks)
    assert torch.all(slices[0].pair.B == 0)


def test_bad_targets_and_models_without_qkv_fail_clearly():
    model = build_backbone(BackboneConfig(name="test"), img_size=32)
    with pytest.raises(UserError, match="unknown LoRA target"):
        inject_lora(model, LoraConfig(targets=("o",)))
    with pytest.raises(UserError, match="no fused qkv"):
        inject_lora(torch.nn.Sequential(torch.nn.Linear(3, 3)), LoraConfig())


def test_inject_lora_returns_typed_sites_that_are_the_module_names():
    model = build_backbone(BackboneConfig(name="test"), img_size=32)
    modules = inject_lora(model, LoraConfig(rank=2))
    names = dict(model.named_modules())
    for index, (site, layer) in enumerate(modules.items()):
        assert isinstance(site, Site) and (site.block, site.projection) == (index, "qkv")
        assert names[site] is layer                     # a site is the name named_modules() spells
        assert modules[str(site)] is layer              # and a dict keyed by sites answers to plain names
    site = Site(3)
    assert site == "blocks.3.attn.qkv" and Site.parse("blocks.3.attn.qkv").block == 3
    assert site.slice_key("v") == "blocks.3.v" and site.block_name == "blocks.3"
    copied = pickle.loads(pickle.dumps(site))
    assert isinstance(copied, Site) and copied.block == 3 and copied == site
    with pytest.raises(ValueError, match="not an adapted module name"):
        Site.parse("blocks.3.mlp.fc1")


def test_merged_lora_for_evaluation_matches_and_restores_the_weights_bit_for_bit():
    layer, other = random_lora(), random_lora()
    layer.add_pairs()                                   # per-task pairs: Σ B_i A_i is folded
    torch.nn.init.normal_(layer.adapters["k"][1].B)

    class NotPlainLoRA(LoRAQKV):                        # e.g. SD-LoRA's magnitudes: more than BA, never merged
        pass

    odd = NotPlainLoRA(torch.nn.Linear(12, 36), ("k",), 2, 1.0)
    x = torch.randn(4, 12)
    reference, weights = layer(x), layer.base_layer.weight.clone()
    odd_weight = odd.base_layer.weight.clone()
    with merged_lora([layer, other, odd]) as count:
        assert count == 2 and layer.merged and not odd.merged
        torch.testing.assert_close(layer(x), reference, atol=1e-5, rtol=1e-5)
        assert not torch.equal(layer.base_layer.weight, weights)
    assert not layer.merged and torch.equal(layer.base_layer.weight, weights)
    assert torch.equal(odd.base_layer.weight, odd_weight)
