"""BiLoRA (CVPR'25), following the unofficial implementation summarised in docs/baselines.md §12.

Per block and adapted slice s ∈ lora.targets (K and V by default), task t owns real coefficients c_{s,t} on a
set S_t of 2-D frequencies of the (d_out × d_in) weight, and the model uses the sum over the tasks seen so far:

    W_s = W0_s + Σ_{i≤t} ΔW_{s,i},      ΔW_{s,i} = α · Re(IFFT2(F_{s,i})),   F_{s,i} = c_{s,i} on S_i, 0 elsewhere.

Only c_{·,t} (zero init, so the model starts as the previous one) and head t are trained; older coefficients
are frozen.  Updates on disjoint supports are nearly Frobenius-orthogonal (Parseval; exactly so up to the
conjugate-symmetric partners that Re(·) adds).

Departures and unverified details:
* [OUR CHOICE] the supports are exactly disjoint: one seeded permutation of the d_out·d_in frequencies is cut into
  consecutive chunks (`_frequency.disjoint_supports`).  The unofficial code draws an independent permutation per
  task (seed 777 + 10t), whose supports overlap in ≈ n_frq/(d_out·d_in) of their positions.
* [UNVERIFIED] n_frq = 3000, α = 300 and the IFFT normalisation (torch's default, 1/(d_out·d_in)) come from the
  unofficial code, not the paper; they are the options below.  The supports are shared by all blocks and slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from janus.config import LoraConfig
from janus.errors import UserError
from janus.lora import SLICES, inject_lora
from janus.methods._frequency import disjoint_supports, frequency_update
from janus.methods.base import Method, MethodContext, TaskInfo
from janus.methods.registry import register_method


@dataclass(frozen=True)
class BiLoRAOptions:
    n_frq: int = 3000         # frequencies per task and matrix (unofficial code) [UNVERIFIED]
    alpha: float = 300.0      # α in ΔW = α·Re(IFFT2(F)) (unofficial code) [UNVERIFIED]
    support_seed: int = 777   # seed of the frequency permutation (the unofficial code seeds 777 + 10t per task)


class FrequencyQKV(nn.Module):
    """Fused qkv ``nn.Linear`` plus per-task frequency-domain updates: y = (W0 + ΔW) x + b (module docstring)."""

    def __init__(self, base_layer: nn.Linear, targets: tuple[str, ...], alpha: float):
        super().__init__()
        self.base_layer, self.targets, self.alpha = base_layer, tuple(targets), alpha
        self.d_in, self.d_slice = base_layer.in_features, base_layer.out_features // 3
        self.coefficients = nn.ModuleDict({t: nn.ParameterList() for t in self.targets})
        self.num_tasks = 0

    def add_task(self, support: Tensor) -> None:
        """Freeze the older coefficients and add zero coefficients on `support` for a new task."""
        device = self.base_layer.weight.device
        self.register_buffer(f"support_{self.num_tasks}", support.to(device), persistent=False)
        for coefficients in self.coefficients.values():
            for old in coefficients:
                old.requires_grad_(False)
            coefficients.append(nn.Parameter(torch.zeros(len(support), device=device)))
        self.num_tasks += 1

    def supports(self) -> list[Tensor]:
        return [getattr(self, f"support_{t}") for t in range(self.num_tasks)]

    def slice_delta_weight(self, target: str) -> Tensor:
        return frequency_update(list(self.coefficients[target]), self.supports(),
                                (self.d_slice, self.d_in), self.alpha)

    def delta_weight(self) -> Tensor:
        weight = self.base_layer.weight
        rows = [self.slice_delta_weight(s) if s in self.coefficients and self.num_tasks else
                weight.new_zeros(self.d_slice, self.d_in) for s in SLICES]
        return torch.cat(rows, dim=0)

    def forward(self, x: Tensor) -> Tensor:
        weight = self.base_layer.weight
        return F.linear(x, weight + self.delta_weight().to(weight.dtype), self.base_layer.bias)


def inject_frequency_updates(model: nn.Module, lora: LoraConfig, alpha: float) -> dict[str, FrequencyQKV]:
    """Replace every ``blocks[i].attn.qkv`` by a `FrequencyQKV` on ``lora.targets`` (keeping it as
    ``base_layer``)."""
    return inject_lora(model, lora, lambda qkv: FrequencyQKV(qkv, lora.targets, alpha), what="BiLoRA")


@register_method("bilora")
class BiLoRA(Method):
    """BiLoRA: per-task coefficients on disjoint frequency supports of K and V (module docstring)."""

    Options = BiLoRAOptions

    def __init__(self, backbone: nn.Module, options: BiLoRAOptions, context: MethodContext):
        super().__init__(backbone, options, context)
        self.frequency_modules = inject_frequency_updates(backbone, context.lora, options.alpha)
        first = next(iter(self.frequency_modules.values()))
        positions = first.d_slice * first.d_in
        if options.n_frq < 1 or options.n_frq * context.num_tasks > positions:
            raise UserError(f"method.n_frq={options.n_frq} for {context.num_tasks} tasks needs more than the "
                            f"{positions} frequencies of a {first.d_slice}x{first.d_in} weight; set "
                            f"method.n_frq to at most {positions // context.num_tasks}")
        self.supports = disjoint_supports(positions, options.n_frq, context.num_tasks, options.support_seed)
        self._frozen_keys = {f"backbone.{k}" for k in backbone.state_dict() if ".coefficients." not in k}

    def before_task(self, task: TaskInfo) -> None:
        super().before_task(task)
        for module in self.frequency_modules.values():
            module.add_task(self.supports[task.index])

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [m.coefficients[t][-1] for m in self.frequency_modules.values() for t in m.targets]

    @torch.no_grad()
    def after_task(self, task: TaskInfo) -> dict:
        norms = [m.slice_delta_weight(t).norm() for m in self.frequency_modules.values() for t in m.targets]
        return {"bilora_total_delta_norm": torch.stack(norms).mean().item()}

    def checkpoint_shapes(self) -> dict:
        return {**super().checkpoint_shapes(), "tasks": next(iter(self.frequency_modules.values())).num_tasks}

    def regrow(self, structure: dict) -> None:
        super().regrow(structure)
        for module in self.frequency_modules.values():
            while module.num_tasks < structure["tasks"]:
                module.add_task(self.supports[module.num_tasks])
