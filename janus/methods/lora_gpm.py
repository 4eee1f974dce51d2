"""LoRA-GPM (docs/baselines.md §7): LoRA whose A-updates are projected off the GPM basis of old-task inputs.

Per block l (K and V share the input x = LN1(h)) a basis M_l of old-task inputs is kept. Every optimizer
step of task t > 0 is rewritten after Adam computed it (docs/method.md §5.7, `_projected.UpdateRewriter`):

    ΔA ← ΔA (I − M_l M_lᵀ),   ΔB unchanged                      (gr = false)
    (ΔA, ΔB) ← GR(A, B, ΔA, ΔB; Π = I − M_l M_lᵀ)               (gr = true, "LoRA-GPM+GR", docs/method.md §5)

so the rows of A move only in span(M_l)^⊥ and ΔW x ≈ 0 for old inputs as far as A's step goes; with
`gr.enabled` the composite B ΔA + ΔB A is rectified instead (`gr.variant`, `gr.ridge`, `gr.balance`: the same GR
and defaults as the janus method). After each task the basis grows from the task's
inputs with ε_t = threshold + (threshold_end − threshold)·t/T (docs/protocol.md §7.2), and a basis larger than
d/2 is stored by its complement (DualGPM, retain mode; the projector flips accordingly).

`statistic` "covariance": the uncentred covariance over all tokens of all training images (InfLoRA's
statistic, docs/protocol.md §7.2); "representation": `gpm_samples` random training images (GPM, §7.1).
`criterion` "eig_sq" applies the GPM energy rule to λ² of the covariance (InfLoRA), "eig" to λ = σ² (GPM).
[OUR CHOICE] defaults: InfLoRA's statistic and rule, since LoRA-GPM keeps InfLoRA's layout.
`lora.structure` picks one shared pair (default) or per-task pairs. [UNVERIFIED] whether the Janus tables'
LoRA-GPM starts a new A in the null space (docs/baselines.md §15 item 4): `null_space_init` (per-task pairs only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from janus.errors import UserError, check_choice
from janus.methods._lora_base import LoRAMethod
from janus.methods.base import MethodContext, TaskInfo
from janus.methods.registry import register_method
from janus.projection import GR_OFF, GRSettings, UpdateRewriter
from janus.rectify import project_right
from janus.subspace import BlockBases, energy_threshold, input_covariances


@dataclass(frozen=True)
class LoRAGPMOptions:
    threshold: float = 0.95        # ε_0: InfLoRA's λ (0.95 CIFAR-100 / DomainNet, 0.98 ImageNet-R)
    threshold_end: float = 1.0     # ε_T (InfLoRA's `lame`)
    statistic: str = "covariance"  # covariance (all tokens, InfLoRA) | representation (GPM's sampled images)
    criterion: str = "eig_sq"      # eig_sq: energy on λ² (InfLoRA) | eig: on λ = σ² (GPM)
    gpm_samples: int = 125         # images for statistic=representation (GPM's 125)
    # LoRA-GPM+GR with gr.enabled: rectify the composite step instead of projecting ΔA; gr.hook also says
    # where the ΔA projection applies (update: Adam's step, §5.7 | grad: the gradients before Adam)
    gr: GRSettings = field(default_factory=lambda: GR_OFF)
    null_space_init: bool = False  # [UNVERIFIED] start each new per-task A in span(M)^⊥
    diagnostics: bool = True       # log ‖ΔW V‖/‖ΔW‖ of the raw and applied steps per task


@register_method("lora-gpm")
class LoRAGPM(LoRAMethod):
    Options = LoRAGPMOptions

    def __init__(self, backbone: nn.Module, options: LoRAGPMOptions, context: MethodContext):
        super().__init__(backbone, options, context)
        check_choice("statistic", options.statistic, ("covariance", "representation"))
        if options.null_space_init and context.lora.structure != "per_task":
            raise UserError("method.null_space_init needs lora.structure=per_task "
                            "(a shared A is not re-initialised)")
        self.bases = BlockBases(options.criterion)
        rule = "rectify" if options.gr.enabled else "project_a"
        self.rewriter = UpdateRewriter(rule, options.gr, options.diagnostics)
        self.projectors: dict = {}

    def before_task(self, task: TaskInfo) -> None:
        super().before_task(task)
        self.projectors = self.bases.projectors(self.slices)
        if self.options.null_space_init and task.index > 0:
            self._start_in_null_space()

    @torch.no_grad()
    def _start_in_null_space(self) -> None:
        for s in self.slices:
            if s.name in self.projectors:
                p = self.projectors[s.name]
                s.pair.A.copy_(project_right(s.pair.A, p.basis, p.mode))

    def after_backward(self, task: TaskInfo) -> None:
        self.rewriter.before_step(self.slices, self.projectors)

    def after_step(self, task: TaskInfo) -> None:
        self.rewriter.after_step(self.slices, self.projectors)

    def after_task(self, task: TaskInfo) -> dict:
        eps = energy_threshold(task.index, task.num_tasks, self.options.threshold, self.options.threshold_end)
        self.bases.update(self._task_covariances(task), eps)
        return {"threshold": eps, **self.bases.summary(), **self.rewriter.summary()}

    def _task_covariances(self, task: TaskInfo) -> dict:
        if self.options.statistic == "representation":
            return input_covariances(self.features, self, task, self.lora_modules,
                                     batch_size=self.options.gpm_samples, max_batches=1, shuffle=True)
        return input_covariances(self.features, self, task, self.lora_modules)

    def extra_state(self) -> dict:
        return {"bases": self.bases.state()}

    def load_extra_state(self, state: dict) -> None:
        self.bases.load(state["bases"], self.context.device)
