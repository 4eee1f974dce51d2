"""Per-task linear heads, concatenated at inference (docs/method.md §2.3, InfLoRA's `classifier_pool`).

Training uses only the current head (cross-entropy over the current task's classes); inference concatenates
the logits of every head seen so far and takes the argmax over all seen classes (no task id).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class TaskHeads(nn.Module):
    def __init__(self, feature_dim: int):
        super().__init__()
        self.feature_dim = feature_dim
        self.heads = nn.ModuleList()

    def add_head(self, num_classes: int, device: torch.device | None = None) -> nn.Linear:
        """Append a head for a new task; older heads are frozen."""
        for head in self.heads:
            head.requires_grad_(False)
        head = nn.Linear(self.feature_dim, num_classes, device=device)
        self.heads.append(head)
        return head

    @property
    def current(self) -> nn.Linear:
        return self.heads[-1]

    @property
    def num_classes(self) -> int:
        return sum(head.out_features for head in self.heads)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits over all seen classes: [f W_1ᵀ + b_1, …, f W_tᵀ + b_t]."""
        if len(self.heads) == 1:
            return self.heads[0](features)
        weight = torch.cat([head.weight for head in self.heads], dim=0)
        bias = torch.cat([head.bias for head in self.heads], dim=0)
        return F.linear(features, weight, bias)

    def grow_to(self, sizes: list[int], device: torch.device | None = None) -> None:
        """Recreate heads of the given sizes (before loading a checkpoint)."""
        for size in sizes[len(self.heads):]:
            self.add_head(size, device)
