"""Decoupled Margin Loss (DML), the prototype bank it pushes away from, and the "danger" diagnostic.

See docs/method.md §6 (6.2 prototypes, 6.3 loss, 6.4 diagnostic).  Features are the CLS token after the final
LayerNorm; prototypes are raw (unnormalised) class means, L2-normalised only when used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

DML_FORMS = ("hinge", "softmax")


def _centres_and_inverse(features: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    classes, inverse = labels.unique(return_inverse=True)
    sums = features.new_zeros(len(classes), features.shape[1]).index_add(0, inverse, features)
    counts = torch.bincount(inverse, minlength=len(classes)).to(features.dtype)
    return classes, sums / counts[:, None], inverse


def class_centres(features: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """(classes, centres): the distinct labels (sorted) and the mean feature of each, from one batch."""
    classes, centres, _ = _centres_and_inverse(features, labels)
    return classes, centres


def own_class_centres(features: Tensor, labels: Tensor) -> Tensor:
    """Row i = the in-batch mean feature of sample i's class (B × D); differentiable."""
    _, centres, inverse = _centres_and_inverse(features, labels)
    return centres[inverse]


class PrototypeBank:
    """Old-class prototypes: one mean feature per learned class, appended per task and never updated after.

    Two ways in (docs/method.md §6.2): ``add(classes, means)`` from a post-task pass (LoRA-DRS: test transform, model at the
    end of the task), or ``accumulate(features, labels)`` on every batch of the last epoch followed by
    ``finalize(classes)`` (the "no extra pass" switch).  Features are averaged without normalisation;
    ``normalized()`` gives the L2-normalised bank (N_old × D) that ``dml_loss`` and ``danger`` use.
    """

    def __init__(
        self, dim: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ):
        self.dim = dim
        self.prototypes = torch.zeros(0, dim, dtype=dtype, device=device)
        self.classes = torch.zeros(0, dtype=torch.long, device=device)
        self._sums: dict[int, Tensor] = {}
        self._counts: dict[int, int] = {}

    def __len__(self) -> int:
        return self.prototypes.shape[0]

    @torch.no_grad()
    def accumulate(self, features: Tensor, labels: Tensor) -> None:
        """Add a batch to the running per-class sums (features detached, labels = global class ids)."""
        classes, inverse = labels.unique(return_inverse=True)
        sums = torch.zeros(len(classes), self.dim, dtype=self.prototypes.dtype, device=features.device)
        sums.index_add_(0, inverse, features.detach().to(sums.dtype))
        counts = torch.bincount(inverse, minlength=len(classes)).tolist()
        for label, class_sum, count in zip(classes.tolist(), sums, counts):
            self._sums[label] = self._sums[label] + class_sum if label in self._sums else class_sum
            self._counts[label] = self._counts.get(label, 0) + count

    def finalize(self, classes: list[int] | None = None) -> Tensor:
        """Append the accumulated means of ``classes`` (default: every accumulated class, sorted), clear the sums."""
        classes = sorted(self._sums) if classes is None else [int(c) for c in classes]
        missing = [c for c in classes if c not in self._sums]
        if missing:
            raise ValueError(f"no features were accumulated for classes {missing}")
        means = torch.stack([self._sums[c] / self._counts[c] for c in classes]) if classes else None
        self._sums.clear()
        self._counts.clear()
        if means is None:
            return self.prototypes[:0]
        return self.add(classes, means)

    @torch.no_grad()
    def add(self, classes: list[int] | Tensor, means: Tensor) -> Tensor:
        """Append ``means`` (len(classes) × D) for new classes; classes already in the bank are refused."""
        classes = torch.as_tensor(classes, dtype=torch.long).reshape(-1)
        if means.shape != (len(classes), self.dim):
            raise ValueError(
                f"expected means of shape ({len(classes)}, {self.dim}), got {tuple(means.shape)}"
            )
        known = set(self.classes.tolist()) & set(classes.tolist())
        if known or len(set(classes.tolist())) != len(classes):
            raise ValueError(
                f"prototypes are never updated: classes {sorted(known) or 'repeated'} already given"
            )
        if len(self) == 0:
            self.prototypes = self.prototypes.to(means.device)
            self.classes = self.classes.to(means.device)
        self.prototypes = torch.cat([self.prototypes, means.detach().to(self.prototypes)])
        self.classes = torch.cat([self.classes, classes.to(self.classes.device)])
        return self.prototypes[-len(classes) :]

    def normalized(self) -> Tensor:
        return F.normalize(self.prototypes, dim=1)

    def state_dict(self) -> dict[str, Tensor]:
        return {"prototypes": self.prototypes.clone(), "classes": self.classes.clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.prototypes, self.classes = state["prototypes"].clone(), state["classes"].clone()
        self.dim = self.prototypes.shape[1]


def _nearest_old_cosine(features: Tensor, prototypes: Tensor) -> Tensor:
    """max_{c ∈ C_old} ⟨f̂_i, p̂_c⟩ per sample (B,)."""
    return (F.normalize(features, dim=1) @ F.normalize(prototypes.to(features), dim=1).mT).amax(dim=1)


def _pull_term(features: Tensor, labels: Tensor, margin_new: float) -> Tensor:
    """L_pull = mean_i [m_new − ⟨f̂_i, ĉ_{y_i}⟩]₊ with ĉ_y the normalised in-batch mean of class y (not detached)."""
    centres = F.normalize(own_class_centres(features, labels), dim=1)
    return F.relu(margin_new - (F.normalize(features, dim=1) * centres).sum(1)).mean()


def _softmax_term(features, prototypes, margin, labels, head_weight, tau) -> Tensor:
    """mean_i −log( e^{τ⟨f̂,ŵ_y⟩} / (e^{τ⟨f̂,ŵ_y⟩} + Σ_{c∈old} e^{τ(⟨f̂,p̂_c⟩ + m)}) )  (docs/method.md §6.3, softmax switch)."""
    if labels is None or head_weight is None:
        raise ValueError("the softmax DML form needs labels (current-head indices) and head_weight")
    f_hat = F.normalize(features, dim=1)
    positive = tau * (f_hat * F.normalize(head_weight.to(features), dim=1)[labels]).sum(1, keepdim=True)
    negatives = tau * (f_hat @ F.normalize(prototypes.to(features), dim=1).mT + margin)
    return (torch.logsumexp(torch.cat([positive, negatives], dim=1), dim=1) - positive[:, 0]).mean()


def dml_loss(
    features: Tensor,
    prototypes: Tensor | None,
    margin_old: float,
    labels: Tensor | None = None,
    gamma: float = 0.0,
    margin_new: float = 0.7,
    form: str = "hinge",
    head_weight: Tensor | None = None,
    tau: float = 16.0,
) -> Tensor:
    """Decoupled Margin Loss, docs/method.md §6.3.

    hinge (default):  L = (1/B) Σ_i [max_{c∈C_old} ⟨f̂_i, p̂_c⟩ − m_old]₊  +  γ·(1/B) Σ_i [m_new − ⟨f̂_i, ĉ_{y_i}⟩]₊
    (the pull term needs ``labels``; ĉ_y is the in-batch class mean).  softmax: see ``_softmax_term``, with
    m = ``margin_old`` as additive margin, ``labels`` indexing rows of ``head_weight`` (the current head), τ = ``tau``.
    With no prototypes (task 0) it returns a zero that still supports ``backward()``.
    """
    if form not in DML_FORMS:
        raise ValueError(f"unknown DML form {form!r}; valid: {', '.join(DML_FORMS)}")
    if prototypes is None or len(prototypes) == 0:
        return features.sum() * 0.0
    if form == "softmax":
        return _softmax_term(features, prototypes, margin_old, labels, head_weight, tau)
    loss = F.relu(_nearest_old_cosine(features, prototypes) - margin_old).mean()
    if gamma:
        if labels is None:
            raise ValueError("the DML pull term (gamma > 0) needs labels")
        loss = loss + gamma * _pull_term(features, labels, margin_new)
    return loss


@torch.no_grad()
def danger(features: Tensor, prototypes: Tensor | None, labels: Tensor) -> dict[str, float]:
    """ "Feature invasion danger" diagnostic, docs/method.md §6.4, on one set of current-task features.

    x_i = max_{c∈C_old} cos(f_i, p_c), y_i = cos(f_i, own class centre) with the centre the mean feature of the
    class within ``features``.  Returns nearest_old_cos = mean x (the paper's "danger"; NaN without prototypes),
    own_centre_cos = mean y, and the shares in the danger zone (x > 0.5, y < 0.5) and ideal zone (y > 0.7, x < 0.5).
    """
    features = features.float()
    own = F.cosine_similarity(features, own_class_centres(features, labels), dim=1)
    if prototypes is None or len(prototypes) == 0:
        nearest = torch.full_like(own, float("nan"))
    else:
        nearest = _nearest_old_cosine(features, prototypes)
    return {
        "nearest_old_cos": nearest.mean().item(),
        "own_centre_cos": own.mean().item(),
        "danger_zone": ((nearest > 0.5) & (own < 0.5)).float().mean().item(),
        "ideal_zone": ((own > 0.7) & (nearest < 0.5)).float().mean().item(),
    }
