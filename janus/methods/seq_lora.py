"""Sequential LoRA with no protection (docs/baselines.md §6).

The Janus-LoRA base model with OE, GR and DML off: one LoRA pair on K and V of every block, trained
task after task (the "Fine-Tuning" row of the Janus-LoRA tables and ablation ①). `lora.structure=per_task`
gives the "LoRA-expand" variant.
"""

from janus.methods._lora_base import LoRAMethod
from janus.methods.registry import register_method


@register_method("seq-lora")
class SequentialLoRA(LoRAMethod):
    pass
