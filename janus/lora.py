"""LoRA on slices of timm's fused ``qkv`` projection (K and V by default).

For an adapted slice (docs/method.md §2.1) with frozen weight W0 (d_out × d_in):

    y = W0 x + b + s · Σ_i B_i A_i x,      A_i ∈ R^{r×d_in}, B_i ∈ R^{d_out×r}

A is Kaiming-uniform (a = √5) and B is zero, so an injected model equals the base model at init.
``structure="shared"`` keeps one pair per slice, trained across all tasks (the Janus default, §2.2);
``structure="per_task"`` adds a new pair at each task and freezes the old ones (InfLoRA-style branches).
peft cannot adapt only the K and V slices of timm's fused qkv, hence this small module (docs/architecture.md §1).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Self

import torch
from torch import nn

from janus.config import LoraConfig
from janus.errors import UserError

SLICES = ("q", "k", "v")


class LoRAPair(nn.Module):
    """One low-rank pair: ``delta(x) = (x Aᵀ) Bᵀ`` (the scale is applied by the owner)."""

    def __init__(self, d_in: int, d_out: int, rank: int):
        super().__init__()
        self.A = nn.Parameter(torch.empty(rank, d_in))
        self.B = nn.Parameter(torch.zeros(d_out, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))

    def weight(self) -> torch.Tensor:
        return self.B @ self.A


class LoRAQKV(nn.Module):
    """Drop-in replacement for a fused qkv ``nn.Linear`` that adds LoRA updates to chosen slices."""

    def __init__(self, base_layer: nn.Linear, targets: tuple[str, ...], rank: int, scale: float):
        super().__init__()
        if base_layer.out_features % 3:
            raise UserError(f"qkv layer has {base_layer.out_features} outputs, not 3 equal slices")
        self.base_layer = base_layer
        self.d_in, self.d_slice = base_layer.in_features, base_layer.out_features // 3
        self.targets, self.rank, self.scale = tuple(targets), rank, scale
        self.adapters = nn.ModuleDict({t: nn.ModuleList() for t in self.targets})
        self.merged = False
        self.add_pairs()

    def add_pairs(self) -> None:
        """Append a fresh pair to every adapted slice (per-task branches) and freeze the older ones."""
        for pairs in self.adapters.values():
            for pair in pairs:
                pair.requires_grad_(False)
            pairs.append(LoRAPair(self.d_in, self.d_slice, self.rank).to(self.base_layer.weight.device))

    def slice_delta_weight(self, target: str) -> torch.Tensor:
        """s · Σ_i B_i A_i for one slice (d_slice × d_in)."""
        return self.scale * sum(pair.weight() for pair in self.adapters[target])

    def delta_weight(self) -> torch.Tensor:
        """The full (3·d_slice × d_in) update, zero on slices that are not adapted."""
        rows = [self.slice_delta_weight(s) if s in self.adapters else
                self.base_layer.weight.new_zeros(self.d_slice, self.d_in) for s in SLICES]
        return torch.cat(rows, dim=0)

    def _slice_output(self, x: torch.Tensor, target: str) -> torch.Tensor:
        pairs = self.adapters[target]
        if len(pairs) == 1:
            return (x @ pairs[0].A.t()) @ pairs[0].B.t()
        a_cat = torch.cat([p.A for p in pairs], dim=0)
        b_cat = torch.cat([p.B for p in pairs], dim=1)
        return (x @ a_cat.t()) @ b_cat.t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(x)
        if self.merged:
            return out
        parts = [self.scale * self._slice_output(x, s) if s in self.adapters else None for s in SLICES]
        zeros = None
        for i, part in enumerate(parts):
            if part is None:
                zeros = zeros if zeros is not None else out.new_zeros(*out.shape[:-1], self.d_slice)
                parts[i] = zeros
        return out + torch.cat(parts, dim=-1).to(out.dtype)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold s·BA into the frozen weight (inference speed); `unmerge` restores it."""
        if not self.merged:
            self.base_layer.weight += self.delta_weight().to(self.base_layer.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.base_layer.weight -= self.delta_weight().to(self.base_layer.weight.dtype)
            self.merged = False


@contextlib.contextmanager
def merged_lora(modules: Iterable[nn.Module]) -> Iterator[int]:
    """Evaluate with s·Σ BA folded into W0: each adapted qkv then costs one matmul instead of the base plus the
    LoRA branch. Only plain `LoRAQKV` layers merge (subclasses and other layers carry more than BA). On exit
    the weights are restored bit for bit from a copy (W0 + Δ − Δ is not W0 in floating point). Yields the
    number of merged layers. The merged forward equals the unmerged one up to float rounding (tested)."""
    saved = []
    with torch.no_grad():
        for module in modules:
            if type(module) is LoRAQKV and not module.merged:
                saved.append((module, module.base_layer.weight.detach().clone()))
                module.merge()
    try:
        yield len(saved)
    finally:
        with torch.no_grad():
            for module, weight in saved:
                module.base_layer.weight.copy_(weight)
                module.merged = False


@dataclass(frozen=True)
class AdaptedSlice:
    """One adapted matrix: block index, slice name ('k' or 'v') and its module (for GR, OE, diagnostics)."""

    block: int
    target: str
    module: LoRAQKV

    @property
    def pair(self) -> LoRAPair:
        """The trainable (latest) pair of this slice."""
        return self.module.adapters[self.target][-1]

    @property
    def name(self) -> str:
        """The slice's site key: 'blocks.3.k' (diagnostics, projector maps)."""
        return slice_name(self.block, self.target)

    @property
    def site(self) -> Site:
        """The adapted module's site (its name in the backbone: 'blocks.3.attn.qkv')."""
        return Site(self.block)

    @property
    def rows(self) -> slice:
        """The rows of the fused (3·d_slice × d_in) qkv weight that belong to this slice."""
        start = SLICES.index(self.target) * self.module.d_slice
        return slice(start, start + self.module.d_slice)

    def base_weight(self) -> torch.Tensor:
        """This slice's frozen weight W0 (a view of the fused qkv weight)."""
        return self.module.base_layer.weight[self.rows]

    @torch.no_grad()
    def add_to_base(self, delta: torch.Tensor) -> None:
        """W0 += delta on this slice (a permanent merge; `LoRAQKV.merge` is undoable)."""
        weight = self.module.base_layer.weight
        weight[self.rows] += delta.to(weight.dtype)


class Site(str):
    """The typed key of one adapted module: its block index and projection ('qkv'), which `inject_lora` returns.

    A `Site` *is* the module's name as `named_modules()` spells it ('blocks.3.attn.qkv'): it compares and
    hashes as that string, so dicts keyed by sites also answer to names (state dicts, hooks, checkpoints),
    while code that needs the block reads ``site.block`` instead of parsing the name. The naming of adapted
    sites lives here and nowhere else.
    """

    block: int
    projection: str

    def __new__(cls, block: int, projection: str = "qkv") -> Self:
        site = super().__new__(cls, f"blocks.{int(block)}.attn.{projection}")
        site.block, site.projection = int(block), projection
        return site

    @classmethod
    def parse(cls, name: str) -> Site:
        """The site a module name denotes ('blocks.3.attn.qkv' -> Site(3, 'qkv')); a one-line error otherwise."""
        parts = str(name).split(".")
        if len(parts) != 4 or parts[0] != "blocks" or parts[2] != "attn" or not parts[1].isdigit():
            raise ValueError(f"{name!r} is not an adapted module name like 'blocks.3.attn.qkv'")
        return cls(int(parts[1]), parts[3])

    @property
    def block_name(self) -> str:
        """'blocks.<block>', the block's name (per-block diagnostics)."""
        return f"blocks.{self.block}"

    def slice_key(self, target: str) -> str:
        """'blocks.<block>.<target>', the key of one adapted slice of this site (diagnostics, projector maps)."""
        return slice_name(self.block, target)

    def __getnewargs__(self) -> tuple[int, str]:  # pickle / deepcopy rebuild from the fields, not the name
        return self.block, self.projection

    def __repr__(self) -> str:
        return f"Site({self.block}, {self.projection!r})"


def slice_name(block: int, target: str) -> str:
    """'blocks.<block>.<target>', the key of one adapted slice."""
    return f"blocks.{block}.{target}"


def block_of(name: str) -> int:
    """The block index of a site, or of a module or slice name read back from a file ('blocks.3.k' -> 3)."""
    return name.block if isinstance(name, Site) else int(str(name).split(".")[1])


LayerFactory = Callable[[nn.Linear], nn.Module]


def inject_lora(model: nn.Module, cfg: LoraConfig, layer_factory: LayerFactory | None = None,
                what: str = "LoRA") -> dict[Site, nn.Module]:
    """Replace every ``blocks[i].attn.qkv`` by ``layer_factory(qkv)`` (default: a `LoRAQKV` from ``cfg``);
    return {Site (block, projection): new layer}, in block order. Methods with their own adapted layer (BiLoRA's frequency updates,
    SD-LoRA's magnitudes) pass a factory.

    Like peft, this keeps the original layer as ``base_layer`` and raises when nothing matched.
    """
    bad = [t for t in cfg.targets if t not in SLICES]
    if bad or not cfg.targets:
        raise UserError(f"unknown LoRA target(s) {bad or '[]'}; choose from {', '.join(SLICES)}")
    if cfg.structure not in ("shared", "per_task"):
        raise UserError(f"unknown lora.structure {cfg.structure!r}; use shared or per_task")
    make = layer_factory or (lambda qkv: LoRAQKV(qkv, cfg.targets, cfg.rank, cfg.scale))
    injected = {}
    for index, block in enumerate(getattr(model, "blocks", [])):
        qkv = getattr(getattr(block, "attn", None), "qkv", None)
        if isinstance(qkv, nn.Linear):
            block.attn.qkv = make(qkv)
            injected[Site(index)] = block.attn.qkv
    if not injected:
        raise UserError(f"no fused qkv projection found in {type(model).__name__}; {what} needs a timm ViT")
    return injected


def adapted_slices(modules: dict[Site, LoRAQKV]) -> list[AdaptedSlice]:
    """All (block, slice) pairs in block order."""
    return [AdaptedSlice(block_of(site), t, module) for site, module in modules.items() for t in module.targets]


def lora_parameters(modules: dict[Site, LoRAQKV]) -> list[nn.Parameter]:
    """The trainable LoRA parameters (latest pair of every slice)."""
    return [p for s in adapted_slices(modules) for p in (s.pair.A, s.pair.B) if p.requires_grad]
