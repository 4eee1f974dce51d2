import pytest
import torch
from timm.layers import Attention

from janus.backbone import build_backbone
from janus.config import BackboneConfig
from janus.errors import UserError
from janus.prompts import (
    PrefixAttention,
    PromptInjector,
    cosine_matrix,
    halves,
    merge_prefixes,
    orthonormal_rows,
)


def tiny_vit():
    torch.manual_seed(0)
    return build_backbone(BackboneConfig(name="test"), img_size=32).eval()


def dense_prefix_reference(attn: Attention, x, key_prefix, value_prefix):
    """softmax(Q Kᵀ/√d) V per head, written out, with the prefix rows concatenated to K and V."""
    heads, dim = attn.num_heads, x.shape[-1]
    head_dim = dim // heads
    w, b = attn.qkv.weight, attn.qkv.bias
    outputs = []
    for h in range(heads):
        rows = slice(h * head_dim, (h + 1) * head_dim)
        q = x @ w[rows].t() + b[rows]
        k = x @ w[dim:][rows].t() + b[dim:][rows]
        v = x @ w[2 * dim :][rows].t() + b[2 * dim :][rows]
        k = torch.cat([key_prefix[..., rows], k], dim=1)
        v = torch.cat([value_prefix[..., rows], v], dim=1)
        scores = torch.softmax(q @ k.transpose(1, 2) / head_dim**0.5, dim=-1)
        outputs.append(scores @ v)
    return torch.cat(outputs, dim=-1) @ attn.proj.weight.t() + attn.proj.bias


def test_prefix_attention_equals_dense_reference():
    torch.manual_seed(0)
    attn = Attention(16, num_heads=4, qkv_bias=True).eval()
    torch.nn.init.normal_(attn.qkv.bias)
    x, key_prefix, value_prefix = torch.randn(3, 7, 16), torch.randn(3, 5, 16), torch.randn(3, 5, 16)
    wrapper = PrefixAttention(attn)
    wrapper.prefix = (key_prefix, value_prefix)
    torch.testing.assert_close(wrapper(x), dense_prefix_reference(attn, x, key_prefix, value_prefix))


def test_no_prefix_and_zero_length_prefix_give_the_original_attention_exactly():
    torch.manual_seed(0)
    attn = Attention(16, num_heads=4).eval()
    x = torch.randn(2, 5, 16)
    wrapper = PrefixAttention(attn)
    assert torch.equal(wrapper(x), attn(x))
    wrapper.prefix = (torch.zeros(2, 0, 16), torch.zeros(2, 0, 16))
    assert torch.equal(wrapper(x), attn(x))
    assert wrapper.qkv is attn.qkv and wrapper.num_heads == 4  # attributes pass through


def test_injected_backbone_without_prompts_is_the_original_model_exactly():
    model = tiny_vit()
    x = torch.rand(2, 3, 32, 32)
    reference = model.forward_features(x)
    injector = PromptInjector(model, prefix_layers=(0, 1, 2), input_prompts=True)
    assert torch.equal(injector.forward_tokens(x), reference)
    empty = torch.zeros(2, 0, 64)
    assert torch.equal(injector.forward_tokens(x, prefixes={1: (empty, empty)}, tokens=empty), reference)
    assert torch.equal(model.forward_features(x), reference)


def test_input_prompts_enter_after_cls_and_pos_embed():
    model = tiny_vit()
    x, prompts = torch.rand(2, 3, 32, 32), torch.randn(2, 3, 64)
    tokens = model._pos_embed(model.patch_embed(x))
    expected = model.norm(model.blocks(torch.cat([tokens[:, :1], prompts, tokens[:, 1:]], dim=1)))
    injector = PromptInjector(model, input_prompts=True)
    out = injector.forward_tokens(x, tokens=prompts)
    assert out.shape == (2, tokens.shape[1] + 3, 64)
    torch.testing.assert_close(out, expected)


def test_prefix_through_the_backbone_changes_only_while_active():
    model = tiny_vit()
    x = torch.rand(2, 3, 32, 32)
    injector = PromptInjector(model, prefix_layers=(0,))
    plain = model(x)
    prompt = torch.randn(2, 4, 64)
    prompted = injector.forward_tokens(x, prefixes={0: halves(prompt)})
    assert not torch.allclose(model.forward_head(prompted), plain)
    assert torch.equal(model(x), plain)  # cleared after the call


def test_prefixes_reach_autograd():
    model = tiny_vit()
    injector = PromptInjector(model, prefix_layers=(2,))
    prompt = torch.randn(1, 6, 64, requires_grad=True)
    out = injector.forward_tokens(torch.rand(1, 3, 32, 32), prefixes={2: halves(prompt)})
    (out[:, 0] @ torch.randn(64)).sum().backward()  # a plain sum of a LayerNorm output is constant
    assert prompt.grad is not None and prompt.grad.abs().sum() > 0


def test_unknown_layers_are_user_errors():
    with pytest.raises(UserError, match="blocks 0..5"):
        PromptInjector(tiny_vit(), prefix_layers=(6,))
    injector = PromptInjector(tiny_vit(), prefix_layers=(0,))
    with pytest.raises(ValueError, match="no prefix wrapper"):
        injector.forward_tokens(torch.rand(1, 3, 32, 32), prefixes={3: (torch.zeros(1, 1, 64),) * 2})


def test_merge_prefixes_concatenates_shared_layers():
    a, b = torch.ones(2, 1, 4), torch.zeros(2, 2, 4)
    merged = merge_prefixes({0: (a, a), 1: (a, a)}, {1: (b, b)})
    assert merged[0][0].shape[1] == 1 and merged[1][0].shape[1] == 3


def test_cosine_matrix_is_per_sample():
    query, keys = torch.randn(5, 8), torch.randn(3, 8)
    batch = cosine_matrix(query, keys)
    torch.testing.assert_close(cosine_matrix(query[2:3], keys), batch[2:3])
    torch.testing.assert_close(batch[1, 2], torch.nn.functional.cosine_similarity(query[1], keys[2], dim=0))


def test_orthonormal_rows_are_orthogonal_to_the_old_ones():
    torch.manual_seed(0)
    old = torch.randn(4, 10)
    new = orthonormal_rows(3, 10, against=old)
    torch.testing.assert_close(new @ new.t(), torch.eye(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(new @ old.t(), torch.zeros(3, 4), atol=1e-5, rtol=0)


def test_orthonormal_rows_beyond_the_free_space_stay_unit_vectors():
    torch.manual_seed(0)
    new = orthonormal_rows(4, 5, against=torch.randn(3, 5))
    torch.testing.assert_close(new.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(new[:2] @ new[:2].t(), torch.eye(2), atol=1e-5, rtol=0)
