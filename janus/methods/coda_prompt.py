"""CODA-Prompt (Smith et al., CVPR'23; docs/baselines.md §5), as in `GT-RIPL/CODA-Prompt:models/zoo.py`.

At each prompted layer l (0-4), M components P_m ∈ R^{L_p×D} with keys K_m ∈ R^D and attention vectors
A_m ∈ R^D. The prompt of a sample is an attention-weighted sum of the components, from the frozen-ViT
query q(x):

    α_m(x) = cos(q ⊙ A_m, K_m),        p(x) = Σ_m α_m(x) P_m

and its first L_p/2 rows are the key prefix, the rest the value prefix (janus.prompts prefix tuning).
No selection, no task id at test time, so predictions do not depend on the batch composition.

* **Components per task:** task t owns the slice [t·M/T, (t+1)·M/T). While training task t only that
  slice (P, K, A) is trainable; the older slices enter the sum frozen (CODA detaches them), and the later
  ones are unused. At test time all slices up to the current task are used.
* **Gram–Schmidt initialisation:** when task t starts, its slice of P, K and A is drawn orthonormal to the
  earlier slices' span (per layer; P flattened to L_p·D), `process_task_count` / `gram_schmidt`.
* **Loss:** CE over task t's classes (CODA sets old-class logits to −inf), plus, if μ > 0,
  μ · Σ_l [ ‖K Kᵀ − I‖² + ‖A Aᵀ − I‖² + ‖P Pᵀ − I‖² ] (each a mean over entries, on the components in
  use). μ = 0 by default: CODA's README, and its issue #12 reports that the paper's 0.1 hurts (some versions
  of the code also scale the penalty by 1e-6 internally); try μ ≤ 1e-6 if at all.

Defaults (`--prompt_param 100 8 0.0`): M = 100, L_p = 8, μ = 0, layers 0-4, CLS token after the final norm
as the feature; Adam 1e-3 with CODA's cosine, bs 128 — run with `--set optim.lr=1e-3` (the protocol's
default lr is 5e-4; `inflora_cosine` is CODA's `CosineSchedule`). PILOT's CODA-P uses the same values.
M must be at least the number of tasks; on the tiny `test` backbone (D = 64) use a smaller M.

The published CODA-Prompt numbers are task-averaged accuracy: compare on `acc_task` / `maa_task`
(docs/protocol.md §6.2); the harness's `acc` / `maa` are pooled.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from janus.errors import UserError
from janus.methods._prompt_base import Prompting, PromptMethod
from janus.methods.base import MethodContext, TaskInfo
from janus.methods.registry import register_method
from janus.prompts import halves, orthonormal_rows


@dataclass(frozen=True)
class CodaPromptOptions:
    num_components: int = 100  # M, split evenly over the tasks (CODA `prompt_param[0]`)
    prompt_length: int = 8  # L_p: 4 key + 4 value prefix rows (`prompt_param[1]`)
    ortho_mu: float = 0.0  # μ: README default; the paper's 0.1 hurts (issue #12)
    layers: tuple[int, ...] = (0, 1, 2, 3, 4)

    def __post_init__(self):
        if self.prompt_length < 2 or self.prompt_length % 2:
            raise UserError(
                f"method.prompt_length={self.prompt_length} must be even and >= 2 "
                "(half key prefix, half value prefix)"
            )
        if self.ortho_mu < 0:
            raise UserError(f"method.ortho_mu={self.ortho_mu} must be >= 0")
        if not self.layers:
            raise UserError("method.layers is empty; CODA-Prompt needs at least one prompted layer")


def component_weights(query: torch.Tensor, keys: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """α_{b,l,m} = cos(q_b ⊙ A_lm, K_lm) for query B x D, keys and attention layers x M x D -> B x l x M.

    Computed as (q · (A_lm ⊙ K̂_lm)) / ‖q ⊙ A_lm‖ with ‖q ⊙ A_lm‖² = q² · A_lm², so the B x l x M x D
    tensor q ⊙ A that CODA materialises is never built.
    """
    q = query.float()
    numerator = torch.einsum("bd,lmd->blm", q, attention * F.normalize(keys, dim=-1))
    norm = torch.einsum("bd,lmd->blm", q.square(), attention.square()).sqrt()
    return numerator / norm.clamp_min(1e-12)


def ortho_penalty(rows: torch.Tensor) -> torch.Tensor:
    """mean((R Rᵀ − I)²) over the entries, for the rows of R (M x d)."""
    gram = rows @ rows.t()
    return (gram - torch.eye(gram.shape[0], device=gram.device)).square().mean()


def orthogonal_slice(family: nn.ParameterList, task: int) -> torch.Tensor:
    """Slice `task` of one parameter family (P, K or A; each layers x M/T x ...), drawn per layer with
    rows (flattened) orthonormal to each other and to the rows of slices < task (Gram–Schmidt)."""
    layers, count = family[task].shape[:2]
    new = []
    for layer in range(layers):
        earlier = [family[j][layer].reshape(count, -1) for j in range(task)]
        against = torch.cat(earlier) if earlier else None
        new.append(orthonormal_rows(count, family[task][layer][0].numel(), against))
    return torch.stack(new).reshape(family[task].shape).to(family[task].device)


@register_method("coda-prompt")
class CodaPrompt(PromptMethod):
    Options = CodaPromptOptions

    def __init__(self, backbone: nn.Module, options: CodaPromptOptions, context: MethodContext):
        super().__init__(backbone, options, context, prefix_layers=tuple(options.layers))
        self.layers = tuple(options.layers)
        self.per_task = options.num_components // context.num_tasks
        if self.per_task < 1:
            raise UserError(
                f"method.num_components={options.num_components} is fewer than the "
                f"{context.num_tasks} tasks; CODA-Prompt gives each task M/T components"
            )
        shape = (len(self.layers), self.per_task)
        dim, tasks = context.feature_dim, range(context.num_tasks)
        # Each task's slice is Gram–Schmidt-initialised when its task starts (`before_task`).
        self.components = nn.ParameterList(torch.zeros(*shape, options.prompt_length, dim) for _ in tasks)
        self.keys = nn.ParameterList(torch.zeros(*shape, dim) for _ in tasks)
        self.attention = nn.ParameterList(torch.zeros(*shape, dim) for _ in tasks)

    def slice_parameters(self, task: int) -> list[nn.Parameter]:
        """P, K and A of one task's component slice."""
        return [self.components[task], self.keys[task], self.attention[task]]

    def before_task(self, task: TaskInfo) -> None:
        """Gram–Schmidt-initialise slice t against slices < t; train slice t only."""
        super().before_task(task)
        for index in range(len(self.components)):
            for param in self.slice_parameters(index):
                param.requires_grad_(index == task.index)
        with torch.no_grad():
            for family in (self.components, self.keys, self.attention):
                family[task.index].copy_(orthogonal_slice(family, task.index))

    def trainable_parameters(self) -> list[nn.Parameter]:
        return self.slice_parameters(self.task_index)

    def in_use(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """P, K, A of slices 0..t concatenated (layers x t·M/T x ...); older slices are frozen."""
        seen = range(self.tasks_seen)
        return tuple(
            torch.cat([family[j] for j in seen], dim=1)
            for family in (self.components, self.keys, self.attention)
        )

    def select(self, query: torch.Tensor) -> Prompting:
        """p_l(x) = Σ_m α_lm(x) P_lm per layer, split into key and value prefixes; + μ·ortho in training."""
        components, keys, attention = self.in_use()
        weights = component_weights(query, keys, attention)  # B x layers x M'
        prompts = torch.einsum("blm,lmkd->blkd", weights, components)  # B x layers x L_p x D
        prefixes = {layer: halves(prompts[:, i]) for i, layer in enumerate(self.layers)}
        loss = None
        if self.training and self.options.ortho_mu > 0:
            penalty = sum(
                ortho_penalty(keys[i]) + ortho_penalty(attention[i]) + ortho_penalty(components[i].flatten(1))
                for i in range(len(self.layers))
            )
            loss = self.options.ortho_mu * penalty
        return Prompting(prefixes=prefixes, loss=loss)

    def after_task(self, task: TaskInfo) -> dict:
        return {"components_in_use": self.tasks_seen * self.per_task}
