"""L2P, Learning to Prompt (Wang et al., CVPR'22; docs/baselines.md §3).

A shared pool of M prompts P_m ∈ R^{L_p×D} with keys k_m ∈ R^D. For each sample, the frozen-ViT query
q(x) picks the top-N keys by cos(q, k_m); the chosen prompts are prepended to the tokens (prompt tuning at
the input) and the classification feature is the mean of the prompt tokens' outputs after the final norm
(l2p-pytorch `head_type='prompt'`). Loss (l2p-pytorch `engine.py`, `pull_constraint`):

    L = CE(current task's classes) + λ · mean_b Σ_{s ∈ top-N(x_b)} (1 − cos(q(x_b), k_s))

Only the keys receive the pull term's gradient (selection is a top-k, q is frozen); Adam is invariant to
a constant scale of a parameter's gradient, so λ barely matters under Adam and matters with SGD. Pool,
keys and head are trained at every task.

Defaults follow l2p-pytorch `configs/cifar100_l2p.py` and PILOT: M = 10, L_p = 5, N = 5, λ = 0.1, prompt
mean as feature. Variants by flags:

* **L2P++** (CODA-Prompt repo): `method.pool_size=30 method.prompt_length=20 method.prompt_mode=prefix
  method.feature=cls method.pull_coeff=1` (prefix tuning at layer 0, CLS feature), with Adam 1e-3 and
  cosine (`--set optim.lr=1e-3`).
* **PILOT L2P:** the defaults with `optim.lr=0.001875 optim.schedule=constant optim.batch_size=16`.
* **Batch-wise selection** (`method.batchwise_prompt=true`, l2p-pytorch's default): the N prompts most
  often chosen in the batch are used for the whole batch, so test results depend on the batch
  composition (docs/protocol.md §6.8 item 7); off by default.

The published L2P numbers are task-averaged accuracy: compare on `acc_task` / `maa_task`
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
from janus.prompts import cosine_matrix, halves

PROMPT_MODES = ("input", "prefix")
FEATURES = ("prompt_mean", "cls")


@dataclass(frozen=True)
class L2POptions:
    pool_size: int = 10  # M: l2p-pytorch / PILOT (L2P++: 30)
    prompt_length: int = 5  # L_p (L2P++: 20, split in halves into key and value prefixes)
    top_k: int = 5  # N prompts per sample
    pull_coeff: float = 0.1  # λ, l2p-pytorch `pull_constraint_coeff` (L2P++: 1)
    prompt_mode: str = "input"  # input: prompt tuning (L2P) | prefix: prefix tuning (L2P++)
    prefix_layers: tuple[int, ...] = (0,)  # prefix mode only; L2P++ uses layer 0
    feature: str = "prompt_mean"  # prompt_mean: mean of prompt-token outputs (L2P) | cls: CLS token (L2P++)
    batchwise_prompt: bool = False  # l2p-pytorch's majority vote over the batch; batch-dependent at test

    def __post_init__(self):
        if self.prompt_mode not in PROMPT_MODES:
            raise UserError(f"method.prompt_mode={self.prompt_mode!r}; use one of {', '.join(PROMPT_MODES)}")
        if self.feature not in FEATURES:
            raise UserError(f"method.feature={self.feature!r}; use one of {', '.join(FEATURES)}")
        if self.feature == "prompt_mean" and self.prompt_mode != "input":
            raise UserError(
                "method.feature=prompt_mean needs prompt tokens; use method.prompt_mode=input "
                "or method.feature=cls"
            )
        if not 1 <= self.top_k <= self.pool_size:
            raise UserError(f"method.top_k={self.top_k} must be in 1..method.pool_size ({self.pool_size})")
        if self.prompt_mode == "prefix" and (self.prompt_length < 2 or self.prompt_length % 2):
            raise UserError(
                f"method.prompt_length={self.prompt_length} must be even in prefix mode "
                "(half key prefix, half value prefix)"
            )


def batch_majority(selected: torch.Tensor, pool_size: int) -> torch.Tensor:
    """l2p-pytorch `batchwise_prompt`: the N ids chosen most often in the batch, for every sample."""
    counts = torch.bincount(selected.flatten(), minlength=pool_size)
    return counts.topk(selected.shape[1]).indices.expand(selected.shape[0], -1)


@register_method("l2p")
class L2P(PromptMethod):
    Options = L2POptions

    def __init__(self, backbone: nn.Module, options: L2POptions, context: MethodContext):
        prefix_layers = tuple(options.prefix_layers) if options.prompt_mode == "prefix" else ()
        super().__init__(
            backbone,
            options,
            context,
            prefix_layers=prefix_layers,
            input_prompts=options.prompt_mode == "input",
        )
        self.prefix_layers = prefix_layers
        layers = len(prefix_layers) or 1
        dim = context.feature_dim
        self.prompt_pool = uniform_prompt(options.pool_size, layers, options.prompt_length, dim)
        self.prompt_keys = uniform_prompt(options.pool_size, dim)
        self.register_buffer("usage", torch.zeros(options.pool_size, dtype=torch.long), persistent=False)

    def before_task(self, task: TaskInfo) -> None:
        super().before_task(task)
        self.usage.zero_()

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [self.prompt_pool, self.prompt_keys]

    def select(self, query: torch.Tensor) -> Prompting:
        """Top-N keys per sample by cos(q, k_m); their prompts as input tokens or layer prefixes."""
        cosines = cosine_matrix(query, self.prompt_keys)
        selected = cosines.topk(self.options.top_k, dim=1).indices
        if self.options.batchwise_prompt:
            selected = batch_majority(selected, self.options.pool_size)
        chosen = self.prompt_pool[selected]  # B x N x layers x L_p x D
        batch, dim = chosen.shape[0], chosen.shape[-1]
        loss = None
        if self.training:
            self.usage += torch.bincount(selected.flatten(), minlength=self.options.pool_size)
            loss = self.options.pull_coeff * pull_loss(cosines.gather(1, selected))
        if self.options.prompt_mode == "input":
            return Prompting(tokens=chosen[:, :, 0].reshape(batch, -1, dim), loss=loss, selected=selected)
        prefixes = {}
        for i, layer in enumerate(self.prefix_layers):
            keys, values = halves(chosen[:, :, i])  # B x N x L_p/2 x D each
            prefixes[layer] = (keys.reshape(batch, -1, dim), values.reshape(batch, -1, dim))
        return Prompting(prefixes=prefixes, loss=loss, selected=selected)

    def pool(self, tokens: torch.Tensor, prompting: Prompting) -> torch.Tensor:
        """Mean of the N·L_p prompt-token outputs (after the final norm), or the CLS token."""
        if self.options.feature == "cls":
            return super().pool(tokens, prompting)
        start = self.injector.num_prefix_tokens
        return tokens[:, start : start + prompting.tokens.shape[1]].mean(dim=1)

    def after_task(self, task: TaskInfo) -> dict:
        """How often each pool prompt was chosen in training (the selection-collapse check, §14)."""
        return {"prompt_usage": self.usage.tolist()}
