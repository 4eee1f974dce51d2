"""Shared base for LoRA methods: inject LoRA on the configured qkv slices, train the latest pairs."""

from __future__ import annotations

from torch import nn

from janus.errors import UserError
from janus.lora import AdaptedSlice, LoRAQKV, adapted_slices, inject_lora, lora_parameters, merged_lora
from janus.methods.base import Method, MethodContext, TaskInfo


class LoRAMethod(Method):
    """LoRA (docs/method.md §2.1) on the frozen backbone plus per-task heads.

    With ``lora.structure == "per_task"`` a new pair is added at every task after the first and the older
    pairs are frozen; with ``"shared"`` one pair per slice is trained across all tasks.
    """

    merges_into_backbone = False  # True: folds its update into the qkv weights after each task
    # "per_task": a new pair on every slice at each task after the first whatever lora.structure says (methods
    # defined by per-task branches: InfLoRA, LoRA-DRS); None follows lora.structure; "own": the method adds
    # its pairs itself (SD-LoRA's rank schedule)
    pair_structure: str | None = None

    def __init__(self, backbone: nn.Module, options, context: MethodContext):
        if self.merges_into_backbone and context.lora.structure != "shared":
            raise UserError(f"{self.name} merges its adapter into the weights after every task; "
                            "use lora.structure=shared")
        super().__init__(backbone, options, context)
        self.lora_modules = inject_lora(backbone, context.lora, self.make_layer)
        self._frozen_keys = {k for k in self._frozen_keys if ".adapters." not in k}
        kept = ("bias",) if self.merges_into_backbone else ("weight", "bias")  # merged weights are state
        self._frozen_keys |= {f"backbone.{name}.base_layer.{p}" for name in self.lora_modules for p in kept}

    def make_layer(self, qkv: nn.Linear) -> nn.Module:
        """The adapted layer that replaces one fused qkv projection (override for another LoRA layer)."""
        lora = self.context.lora
        return LoRAQKV(qkv, lora.targets, lora.rank, lora.scale)

    @property
    def structure(self) -> str:
        return self.pair_structure or self.context.lora.structure

    @property
    def slices(self) -> list[AdaptedSlice]:
        return adapted_slices(self.lora_modules)

    def before_task(self, task: TaskInfo) -> None:
        super().before_task(task)
        if task.index > 0 and self.structure == "per_task":
            for module in self.lora_modules.values():
                module.add_pairs()

    def trainable_parameters(self) -> list[nn.Parameter]:
        return lora_parameters(self.lora_modules)

    def merged_for_eval(self):
        """LoRA folded into the qkv weights while evaluating (`janus.lora.merged_lora`; eval.merge_lora)."""
        return merged_lora(self.lora_modules.values())

    def checkpoint_shapes(self) -> dict:
        first = next(iter(self.lora_modules.values()))
        return {**super().checkpoint_shapes(), "pair_ranks": [p.A.shape[0] for p in next(iter(first.adapters.values()))]}

    def regrow(self, structure: dict) -> None:
        super().regrow(structure)
        for module in self.lora_modules.values():
            while len(next(iter(module.adapters.values()))) < len(structure["pair_ranks"]):
                module.add_pairs()
