"""DualPrompt (Wang et al., ECCV'22; docs/baselines.md §4), as in the CODA-Prompt repo (`models/zoo.py`).

Prefix tuning (janus.prompts): each prompt of L rows is split into a key prefix (first L/2 rows) and a
value prefix (the rest), concatenated to K and V of its layer's attention.

* **G-prompt** (general, shared by all tasks): G_l ∈ R^{L_g×D} at `g_layers` (0-1), trained at every task.
* **E-prompts** (expert, one per task): E_t,l ∈ R^{L_e×D} at `e_layers` (2-4), with a key k_t ∈ R^D.
* **Training on task t:** the ground-truth task id picks E_t for every sample; only G, E_t, k_t and head t
  are trained (the older E-prompts and keys are frozen). Loss:
      L = CE(task t's classes) + λ · mean_b (1 − cos(q(x_b), k_t))
  The CODA code sums the pull term over the batch; Adam is invariant to that constant factor on k_t's
  only gradient, so the batch mean is used here.
* **Test:** per sample, the E-prompt of argmax_{j ≤ t} cos(q(x), k_j), the top-1 key among the tasks seen
  so far (the CODA/PILOT code also scores the untrained keys of future tasks [OUR CHOICE: seen only]).
  One key per task serves all E-layers (the CODA code keeps one key copy per layer, all trained on the
  same query and loss). No batch-wise vote: a sample's prediction does not depend on its batch.

Defaults (CODA-Prompt repo): L_e = 20, L_g = 6, λ = 1, E-pool size = number of tasks, prompts U[0, 1),
classification on the CLS token after the final norm; Adam 1e-3 with cosine, bs 128 — run with
`--set optim.lr=1e-3` (the protocol's default lr is 5e-4). **PILOT variant:** `method.g_length=10
method.e_length=10 method.pull_coeff=0.1 method.e_init_from_previous=true` (PILOT's length 5 counts key
and value rows separately; `shared_prompt_pool` starts E_t from E_{t−1}), with `optim.schedule=constant`.

The published DualPrompt numbers are task-averaged accuracy: compare on `acc_task` / `maa_task`
(docs/protocol.md §6.2); the harness's `acc` / `maa` are pooled.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from janus.errors import UserError
from janus.methods._prompt_base import Prompting, PromptMethod, pull_loss, uniform_prompt
from janus.methods.base import MethodContext, TaskInfo
from janus.methods.registry import register_method
from janus.prompts import Prefix, cosine_matrix, halves, merge_prefixes


@dataclass(frozen=True)
class DualPromptOptions:
    g_length: int = 6  # G-prompt rows (3 key + 3 value prefixes); 0 = no G-prompt
    g_layers: tuple[int, ...] = (0, 1)
    e_length: int = 20  # E-prompt rows (10 key + 10 value prefixes)
    e_layers: tuple[int, ...] = (2, 3, 4)
    pull_coeff: float = 1.0  # CODA-Prompt repo (PILOT: 0.1)
    e_init_from_previous: bool = False  # PILOT `shared_prompt_pool`: E_t starts as a copy of E_{t-1}

    def __post_init__(self):
        for name, length, minimum in (("g_length", self.g_length, 0), ("e_length", self.e_length, 2)):
            if length < minimum or length % 2:
                raise UserError(
                    f"method.{name}={length} must be even and >= {minimum} "
                    "(half key prefix, half value prefix)"
                )
        if not self.e_layers:
            raise UserError("method.e_layers is empty; DualPrompt needs at least one E-prompt layer")


def layer_prefixes(layers: tuple[int, ...], prompts: torch.Tensor) -> dict[int, Prefix]:
    """prompts: B x len(layers) x L x D -> {layer: (key half, value half)}."""
    return {layer: halves(prompts[:, i]) for i, layer in enumerate(layers)}


@register_method("dualprompt")
class DualPrompt(PromptMethod):
    Options = DualPromptOptions

    def __init__(self, backbone: nn.Module, options: DualPromptOptions, context: MethodContext):
        g_layers = tuple(options.g_layers) if options.g_length else ()
        super().__init__(backbone, options, context, prefix_layers=g_layers + tuple(options.e_layers))
        self.g_layers, self.e_layers = g_layers, tuple(options.e_layers)
        dim = context.feature_dim
        self.g_prompt = uniform_prompt(len(self.g_layers), options.g_length, dim)
        self.e_prompts = nn.ParameterList(
            uniform_prompt(len(self.e_layers), options.e_length, dim) for _ in range(context.num_tasks)
        )
        self.e_keys = nn.ParameterList(uniform_prompt(dim) for _ in range(context.num_tasks))

    def before_task(self, task: TaskInfo) -> None:
        """Train E-prompt and key t only; optionally start E_t from E_{t-1} (PILOT)."""
        super().before_task(task)
        for index, (prompt, key) in enumerate(zip(self.e_prompts, self.e_keys)):
            prompt.requires_grad_(index == task.index)
            key.requires_grad_(index == task.index)
        if self.options.e_init_from_previous and task.index > 0:
            with torch.no_grad():
                self.e_prompts[task.index].copy_(self.e_prompts[task.index - 1])

    def trainable_parameters(self) -> list[nn.Parameter]:
        current = [self.e_prompts[self.task_index], self.e_keys[self.task_index]]
        return ([self.g_prompt] if self.g_layers else []) + current

    def select(self, query: torch.Tensor) -> Prompting:
        """Training: E-prompt of the current task (ground-truth id). Test: top-1 seen key per sample."""
        batch = query.shape[0]
        if self.training:
            task = self.task_index
            selected = torch.full((batch, 1), task, dtype=torch.long, device=query.device)
            expert = self.e_prompts[task].expand(batch, -1, -1, -1)
            cosines = cosine_matrix(query, self.e_keys[task][None])
            loss = self.options.pull_coeff * pull_loss(cosines)
        else:
            keys = torch.stack(list(self.e_keys[: self.tasks_seen]))
            selected = cosine_matrix(query, keys).argmax(dim=1, keepdim=True)
            expert = torch.stack(list(self.e_prompts[: self.tasks_seen]))[selected[:, 0]]
            loss = None
        general = self.g_prompt.expand(batch, -1, -1, -1)
        prefixes = merge_prefixes(
            layer_prefixes(self.g_layers, general), layer_prefixes(self.e_layers, expert)
        )
        return Prompting(prefixes=prefixes, loss=loss, selected=selected)
