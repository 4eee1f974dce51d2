"""Sequential full fine-tuning (docs/baselines.md §2): every backbone weight plus the current head, no replay.

Loss: cross-entropy over the current head's classes (PILOT FineTune for t > 0; per-task heads as every
other method here). Use a small lr (the CODA-Prompt FT recipe trains with Adam 5e-5).
"""

from torch import nn

from janus.methods.base import Method, MethodContext
from janus.methods.registry import register_method


@register_method("finetune")
class FineTune(Method):
    trains_backbone = True

    def __init__(self, backbone: nn.Module, options, context: MethodContext):
        super().__init__(backbone, options, context)
        backbone.requires_grad_(True)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.backbone.parameters())
