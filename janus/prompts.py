"""Prompt mechanisms for timm ViTs, shared by L2P, DualPrompt and CODA-Prompt (docs/baselines.md §3-§5).

No forked ViT: prompts enter timm's own modules through two small, removable pieces.

* **Prefix tuning** (DualPrompt, CODA-Prompt, L2P++): `PrefixAttention` wraps a block's `attn` and, when
  prefixes (P_k, P_v) ∈ R^{B×L×D} are set, attends over them as extra keys and values, per head h:

      out_h = softmax( Q_h [P_k,h ; K_h]ᵀ / √d_h ) [P_v,h ; V_h],    Q, K, V = x W_qkv (the block's weights)

  P_k and P_v are split into heads like K and V and concatenated *after* the block's projection (and after
  its k-norm, if any), as in `GT-RIPL/CODA-Prompt:models/vit.py` and PILOT's `PreT_Attention`; the output
  goes through the block's own `proj`. With no prefix, or a zero-length one, the wrapper calls the
  original module, so the output is exactly the unprompted model's.
* **Prompt tuning at the input** (L2P): a forward pre-hook on the first block inserts prompt tokens after
  the CLS (and register) tokens: [CLS, P_1 … P_L, patches]. They enter *after* the positional embedding.
  l2p-pytorch instead adds a resampled positional embedding to the prompt rows; since the prompts are
  trainable and sit at fixed positions, that term is a constant offset the prompts absorb (only the
  initialisation differs) [OUR CHOICE: no change to timm's pos-embed].

`PromptInjector` installs both on one backbone; a method sets the prompts of one forward pass with
`injector.forward_tokens(x, prefixes=..., tokens=...)`, which returns the token outputs after the final
norm. Outside that call every wrapper is inactive and `backbone(x)` is the frozen model (the query pass).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from timm.layers import Attention
from torch import nn
from torch.nn import functional as F

from janus.backbone import attention_blocks
from janus.errors import UserError

Prefix = tuple[torch.Tensor, torch.Tensor]  # (P_k, P_v), each B x L x D


def split_heads(tokens: torch.Tensor, num_heads: int) -> torch.Tensor:
    """B x L x D -> B x H x L x D/H, the layout timm uses for K and V."""
    batch, length, dim = tokens.shape
    return tokens.reshape(batch, length, num_heads, dim // num_heads).transpose(1, 2)


def _pad_mask(attn_mask: torch.Tensor | None, prefix_len: int) -> torch.Tensor | None:
    """Extend an attention mask over the key axis so that every query sees every prefix key."""
    if attn_mask is None:
        return None
    visible = torch.ones if attn_mask.dtype == torch.bool else torch.zeros
    pad = visible(*attn_mask.shape[:-1], prefix_len, dtype=attn_mask.dtype, device=attn_mask.device)
    return torch.cat([pad, attn_mask], dim=-1)


def prefix_attention(
    attn: Attention,
    x: torch.Tensor,
    key_prefix: torch.Tensor,
    value_prefix: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """timm `Attention.forward` with prefix keys/values: softmax(Q [P_k; K]ᵀ/√d_h) [P_v; V], then proj."""
    batch, length, _ = x.shape
    heads, head_dim = attn.num_heads, attn.head_dim
    gate = attn.gate(x).sigmoid() if getattr(attn, "gate", None) is not None else None
    q, k, v = attn.qkv(x).reshape(batch, length, 3, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    k = torch.cat([split_heads(key_prefix.to(k.dtype), heads), k], dim=2)
    v = torch.cat([split_heads(value_prefix.to(v.dtype), heads), v], dim=2)
    out = F.scaled_dot_product_attention(
        q,
        k,
        v,
        attn_mask=_pad_mask(attn_mask, key_prefix.shape[1]),
        dropout_p=attn.attn_drop.p if attn.training else 0.0,
    )
    out = attn.norm(out.transpose(1, 2).reshape(batch, length, heads * head_dim))
    if gate is not None:
        out = out * gate
    return attn.proj_drop(attn.proj(out))


class PrefixAttention(nn.Module):
    """A timm `Attention` that attends over prefix keys/values while `prefix` is set (see module doc).

    The original module is kept as `base` (peft's `base_layer` pattern); the wrapper has no parameters.
    """

    def __init__(self, base: Attention):
        super().__init__()
        if not isinstance(base, Attention):
            raise UserError(
                f"prefix tuning needs timm's Attention, got {type(base).__name__}; "
                "use a timm VisionTransformer backbone"
            )
        self.base = base
        self.prefix: Prefix | None = None

    def __getattr__(self, name: str):
        """Unknown attributes come from the wrapped module (`qkv`, `num_heads`, ...), as in peft, so code
        that hooks `blocks[i].attn.qkv` keeps working on a prompted backbone."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("base"), name)

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False
    ) -> torch.Tensor:
        if self.prefix is None or self.prefix[0].shape[1] == 0:
            return self.base(x, attn_mask=attn_mask, is_causal=is_causal)
        if is_causal:
            raise ValueError("prefix tuning with causal attention is not defined for ViT backbones")
        return prefix_attention(self.base, x, *self.prefix, attn_mask=attn_mask)


class InputPrompts:
    """Forward pre-hook on the first block: [CLS, regs, patches] -> [CLS, regs, prompts, patches]."""

    def __init__(self, first_block: nn.Module, num_prefix_tokens: int):
        self.num_prefix_tokens = num_prefix_tokens
        self.tokens: torch.Tensor | None = None
        self.handle = first_block.register_forward_pre_hook(self._insert)

    def _insert(self, module: nn.Module, args: tuple):
        if self.tokens is None or self.tokens.shape[1] == 0:
            return None
        x, *rest = args
        keep = self.num_prefix_tokens
        return (torch.cat([x[:, :keep], self.tokens.to(x.dtype), x[:, keep:]], dim=1), *rest)


class PromptInjector:
    """Prefix wrappers on `prefix_layers` and (optionally) input prompts, installed on one timm ViT."""

    def __init__(self, backbone: nn.Module, prefix_layers: Sequence[int] = (), input_prompts: bool = False):
        blocks = attention_blocks(backbone)
        bad = [layer for layer in prefix_layers if not 0 <= layer < len(blocks)]
        if bad:
            raise UserError(f"prompt layers {bad} do not exist; the backbone has blocks 0..{len(blocks) - 1}")
        self.backbone = backbone
        self.attention: dict[int, PrefixAttention] = {}
        for layer in sorted(set(prefix_layers)):
            if not isinstance(blocks[layer].attn, PrefixAttention):
                blocks[layer].attn = PrefixAttention(blocks[layer].attn)
            self.attention[layer] = blocks[layer].attn
        self.inputs = InputPrompts(blocks[0], backbone.num_prefix_tokens) if input_prompts else None

    @property
    def num_prefix_tokens(self) -> int:
        """Tokens before the prompts (CLS and registers): prompt outputs start at this index."""
        return int(self.backbone.num_prefix_tokens)

    @contextmanager
    def active(
        self, prefixes: Mapping[int, Prefix] | None = None, tokens: torch.Tensor | None = None
    ) -> Iterator[None]:
        """Set the prompts for the forward passes inside the block; always cleared on exit."""
        prefixes = dict(prefixes or {})
        unknown = sorted(set(prefixes) - set(self.attention))
        if unknown:
            raise ValueError(f"no prefix wrapper at layers {unknown}; wrapped: {sorted(self.attention)}")
        if tokens is not None and self.inputs is None:
            raise ValueError("input prompts were not enabled on this injector")
        try:
            for layer, prefix in prefixes.items():
                self.attention[layer].prefix = prefix
            if self.inputs is not None:
                self.inputs.tokens = tokens
            yield
        finally:
            for wrapper in self.attention.values():
                wrapper.prefix = None
            if self.inputs is not None:
                self.inputs.tokens = None

    def forward_tokens(
        self,
        x: torch.Tensor,
        prefixes: Mapping[int, Prefix] | None = None,
        tokens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token outputs after the final norm, B x (N + L_input) x D, with the given prompts."""
        with self.active(prefixes, tokens):
            return self.backbone.forward_features(x)


def merge_prefixes(*parts: Mapping[int, Prefix]) -> dict[int, Prefix]:
    """Union of per-layer prefixes; where two parts share a layer their rows are concatenated."""
    merged: dict[int, Prefix] = {}
    for part in parts:
        for layer, (keys, values) in part.items():
            if layer in merged:
                keys = torch.cat([merged[layer][0], keys], dim=1)
                values = torch.cat([merged[layer][1], values], dim=1)
            merged[layer] = (keys, values)
    return merged


def halves(prompt: torch.Tensor) -> Prefix:
    """Split a prefix prompt B x L x D into its key half (first L/2 rows) and value half (the rest)."""
    half = prompt.shape[-2] // 2
    return prompt[..., :half, :], prompt[..., half:, :]


def cosine_matrix(query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """cos(q_b, k_m) for every sample b and key m: B x M (per sample, so batch-independent)."""
    return F.normalize(query.float(), dim=-1) @ F.normalize(keys.float(), dim=-1).t()


def orthonormal_rows(
    count: int, dim: int, against: torch.Tensor | None = None, tol: float = 1e-6
) -> torch.Tensor:
    """`count` random unit rows in R^dim, orthogonal to each other and to the rows of `against`.

    Gram–Schmidt initialisation of new CODA-Prompt components (docs/baselines.md §5): project random draws
    out of span(against) (an orthonormal basis from its SVD) and orthonormalise them (QR). When the free
    space has fewer than `count` dimensions, the rows beyond it stay random unit vectors (the CODA code
    would redraw forever there; only tiny test backbones hit it).
    """
    draws = torch.randn(count, dim)
    basis = torch.zeros(dim, 0)
    if against is not None and against.numel():
        u, s, _ = torch.linalg.svd(against.detach().float().cpu().t(), full_matrices=False)
        basis = u[:, s > tol * s.max()]
    orthogonal = min(count, dim - basis.shape[1])
    residual = draws[:orthogonal] - (draws[:orthogonal] @ basis) @ basis.t()
    rows = torch.linalg.qr(residual.t()).Q.t() if orthogonal else torch.zeros(0, dim)
    return torch.cat([rows, F.normalize(draws[orthogonal:], dim=1)])
