"""Shared base of the prompt methods: L2P, DualPrompt, CODA-Prompt (docs/baselines.md §3-§5).

One training or evaluation batch goes through

    q(x)      = CLS of the frozen ViT after the final norm          (`query`: one extra pass, no_grad)
    prompting = select(q)                                          (per method: prefixes and/or tokens)
    f(x)      = pool(ViT(x; prompting))                            (janus.prompts: timm's own blocks)
    logits    = per-task heads(f(x));   loss = CE(current head) + prompting.loss

The query is computed once per batch and reused within the step: the prompt loss (pull / orthogonality)
travels to `loss` in `MethodOutput.extra`, so nothing is recomputed. Selection is per sample (cosine
against keys), so test-time predictions never depend on the batch composition (docs/protocol.md §6.8 item 7).
The cross-entropy over the current head's classes equals the papers' masking of the other classes'
logits (l2p-pytorch `train_mask`, CODA-Prompt's old-class −inf).

Conventions of these papers that the harness keeps beside its own:

* **Metric:** their published numbers are **task-averaged** accuracy (`acc_task`, `maa_task`;
  docs/protocol.md §6.2: CODA-Prompt `trainer.py`, l2p-pytorch `evaluate_till_now`); the harness's primary
  `acc`/`maa` are pooled. Compare with the papers on `acc_task`.
* **Optimiser:** the CODA-Prompt recipe is Adam 1e-3 with its cosine schedule, bs 128 (docs/protocol.md §5);
  the protocol's default lr is 5e-4, so run them with `--set optim.lr=1e-3` (the protocol's
  `inflora_cosine` schedule is CODA's `CosineSchedule` formula).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
from torch import nn

from janus.methods.base import Method, MethodContext, MethodOutput, TaskInfo
from janus.prompts import Prefix, PromptInjector


@dataclass
class Prompting:
    """The prompts chosen for one batch, and the loss term that comes with them."""

    prefixes: dict[int, Prefix] = field(default_factory=dict)  # layer -> (P_k, P_v), B x L x D each
    tokens: torch.Tensor | None = None  # input prompts, B x L x D
    loss: torch.Tensor | None = None  # pull / orthogonality term (training)
    selected: torch.Tensor | None = None  # B x N chosen indices, where one is chosen


class PromptMethod(Method, ABC):
    """Frozen ViT + prompts chosen from the frozen-ViT query + per-task heads; subclasses define `select`."""

    def __init__(
        self,
        backbone: nn.Module,
        options,
        context: MethodContext,
        prefix_layers: tuple[int, ...] = (),
        input_prompts: bool = False,
    ):
        super().__init__(backbone, options, context)
        self.injector = PromptInjector(backbone, prefix_layers, input_prompts)
        # The wrappers rename frozen keys (blocks.i.attn.base.*); the prompts live outside the backbone.
        self._frozen_keys = {f"backbone.{key}" for key in backbone.state_dict()}
        self.tasks_seen = 0

    # --- hooks -----------------------------------------------------------------------------------------
    def before_task(self, task: TaskInfo) -> None:
        super().before_task(task)
        self.tasks_seen = task.index + 1

    @property
    def task_index(self) -> int:
        """The task being trained (or, at evaluation, the last one trained)."""
        return self.tasks_seen - 1

    def extra_state(self) -> dict:
        return {"tasks_seen": self.tasks_seen}

    def load_extra_state(self, state: dict) -> None:
        self.tasks_seen = int(state["tasks_seen"])

    # --- forward ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def query(self, x: torch.Tensor) -> torch.Tensor:
        """q(x): the frozen, unprompted ViT's CLS token after the final norm (eval mode, no_grad)."""
        was_training = self.backbone.training
        self.backbone.eval()
        try:
            return self.backbone(x)
        finally:
            self.backbone.train(was_training)

    @abstractmethod
    def select(self, query: torch.Tensor) -> Prompting:
        """The prompts for each sample of the batch, from its query (training: `self.training`)."""

    def pool(self, tokens: torch.Tensor, prompting: Prompting) -> torch.Tensor:
        """Classification feature from the prompted token outputs: the CLS token (timm's `forward_head`)."""
        return self.backbone.forward_head(tokens)

    def prompted(self, x: torch.Tensor) -> tuple[torch.Tensor, Prompting]:
        prompting = self.select(self.query(x))
        tokens = self.injector.forward_tokens(x, prompting.prefixes, prompting.tokens)
        return self.pool(tokens, prompting), prompting

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.prompted(x)[0]

    def forward(self, x: torch.Tensor) -> MethodOutput:
        features, prompting = self.prompted(x)
        extra = {"prompt_loss": prompting.loss, "selected": prompting.selected}
        return MethodOutput(logits=self.heads(features), features=features, extra=extra)

    def loss(self, out: MethodOutput, y: torch.Tensor, task: TaskInfo) -> torch.Tensor:
        """CE over the current head's classes + the prompt term computed in the same forward."""
        ce = super().loss(out, y, task)
        prompt_loss = out.extra.get("prompt_loss")
        return ce if prompt_loss is None else ce + prompt_loss


def pull_loss(cosines: torch.Tensor) -> torch.Tensor:
    """Σ over the selected keys of (1 − cos(q, k)), averaged over the batch (cosines: B or B x N)."""
    distance = 1.0 - cosines
    return distance.reshape(distance.shape[0], -1).sum(dim=1).mean()


def uniform_prompt(*shape: int) -> nn.Parameter:
    """A prompt or key initialised U[0, 1), as `nn.init.uniform_` in CODA-Prompt's `tensor_prompt` and
    l2p-pytorch's `Prompt` (prompt_init='uniform')."""
    return nn.Parameter(torch.rand(*shape))
