"""LoRA-DRS (docs/baselines.md §11; `DngBack/LoRA-Sub-DRS@836ad29:methods/lorasub_drs.py`,
`optimgrad/adam_proj.py`, `utils/losses.py`): LoRA subtraction, updates projected into the drift-resistant
space, augmented triplet loss, NME evaluation.

Per-task pairs (A_t, B_t) on K and V (added at every task whatever `lora.structure` says); A Kaiming, B
sparse (one N(0, 0.01) entry per column, `b_init`); A_t, B_t and head t are trained.

* DRS (t > 0): one pass over the task's training images with the old LoRAs *subtracted*
  (W0 − s Σ_{i<t} B_i A_i) gives the block input covariance C = X̃ᵀX̃/N = V S Vᵀ; P = V[:, :k] with k the
  smallest count such that Σ_{i≤k} S_i / Σ S ≥ `energy` (0.99), T = P Pᵀ / ‖P Pᵀ‖_F = P Pᵀ/√k.
* Each optimizer step of a LoRA pair is replaced by ΔA ← ΔA T, ΔB ← T ΔB (`_projected`, "update" hook:
  the Adam step, as adam_proj.py; `normalize_step=false` drops the 1/√k). With `gr` ("LoRA-DRS+GR",
  docs/method.md §5.1) the composite is rectified by GR with the retain projector Π = P Pᵀ instead
  (times 1/√k as well). Task 0 is unconstrained.
* Loss: CE on the current head + λ·ATL. ATL on L2-normalised features f̂:
  d_ap(i) = max_{y_j = y_i} ‖f̂_i − f̂_j‖ (hardest positive),
  d_an(i) = min(min_{y_j ≠ y_i} ‖f̂_i − f̂_j‖, min_c ‖f̂_i − p̂_c‖) over the old prototypes p̂_c (hardest
  negative; d_ap + m when the batch has no negative), L = mean_i [d_ap(i) − d_an(i) + m]₊.
* After each task, the class means of the training features (test transform) are appended to the
  prototype bank and never updated; `predict` returns −‖f̂ − p̂_c‖² over every seen class (NME; `nme=false`
  falls back to the concatenated heads).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from janus.errors import check_choice
from janus.lora import block_of
from janus.margin import PrototypeBank
from janus.methods._lora_base import LoRAMethod
from janus.methods.base import MethodContext, MethodOutput, TaskInfo
from janus.methods.registry import register_method
from janus.projection import GR_OFF, GRSettings, Projector, UpdateRewriter
from janus.subspace import expand_basis, input_covariances


@dataclass(frozen=True)
class LoRADRSOptions:
    energy: float = 0.99           # eigen-energy kept in the drift-resistant space
    triplet_weight: float = 0.05   # λ of ATL: 0.05 CIFAR-100, 0.2 ImageNet-R, 0.1 DomainNet
    triplet_margin: float = 1.0    # ATL margin: 1.0 CIFAR-100, 2.0 ImageNet-R / DomainNet
    b_init: str = "sparse"         # sparse: one N(0, 0.01) entry per column (the code) | zero
    normalize_step: bool = True    # T = PPᵀ/‖PPᵀ‖_F as the code (divides the effective lr by √k)
    nme: bool = True               # evaluate with the nearest prototype (the code) | heads
    # LoRA-DRS+GR with gr.enabled: rectify the composite step (mode retain); gr.hook: update rewrites Adam's
    # step, grad projects the gradients before Adam
    gr: GRSettings = field(default_factory=lambda: GR_OFF)
    diagnostics: bool = True       # log the share of each step outside the DRS, raw and applied


def drift_resistant_projector(C: Tensor, energy: float, normalize: bool) -> Projector:
    """Π = P Pᵀ (retain), P the top eigenvectors of C holding `energy` of tr C; scale 1/√k if `normalize`."""
    P = expand_basis(None, C, energy, criterion="eig")
    return Projector(P, "retain", 1 / math.sqrt(max(P.shape[1], 1)) if normalize else 1.0)


def augmented_triplet_loss(features: Tensor, labels: Tensor, prototypes: Tensor | None,
                           margin: float) -> Tensor:
    """LoRA-DRS's AugmentedTripletLoss (see the module docstring), vectorised; `prototypes` may be raw."""
    f = F.normalize(features.float(), dim=1)
    dist = _euclidean(f, f)
    same = labels[:, None] == labels[None, :]
    d_ap = dist.masked_fill(~same, float("-inf")).amax(dim=1)
    d_an = dist.masked_fill(same, float("inf")).amin(dim=1)
    d_an = torch.where(torch.isfinite(d_an), d_an, d_ap + margin)
    if prototypes is not None and len(prototypes):
        d_an = torch.minimum(d_an, _euclidean(f, F.normalize(prototypes.to(f), dim=1)).amin(dim=1))
    return F.relu(d_ap - d_an + margin).mean()


def _euclidean(x: Tensor, y: Tensor) -> Tensor:
    """‖x_i − y_j‖ with the code's clamp at 1e-12 before the root (finite gradients at 0)."""
    sq = x.square().sum(1, keepdim=True) + y.square().sum(1)[None, :] - 2 * x @ y.mT
    return sq.clamp_min(1e-12).sqrt()


@contextmanager
def lora_subtracted(modules):
    """W0 − s Σ B_i A_i inside the block: the LoRA scale is negated for the duration."""
    for module in modules:
        module.scale = -module.scale
    try:
        yield
    finally:
        for module in modules:
            module.scale = -module.scale


@register_method("lora-drs")
class LoRADRS(LoRAMethod):
    Options = LoRADRSOptions
    pair_structure = "per_task"

    def __init__(self, backbone: nn.Module, options: LoRADRSOptions, context: MethodContext):
        super().__init__(backbone, options, context)
        check_choice("b_init", options.b_init, ("sparse", "zero"))
        rule = "rectify" if options.gr.enabled else "project_both"
        self.rewriter = UpdateRewriter(rule, options.gr, options.diagnostics)
        self.bank = PrototypeBank(context.feature_dim, device=context.device)
        self.projectors: dict[str, Projector] = {}

    def before_task(self, task: TaskInfo) -> None:
        self.projectors = self._drift_resistant_projectors(task) if task.index > 0 else {}
        super().before_task(task)
        if self.options.b_init == "sparse":
            with torch.no_grad():
                for s in self.slices:
                    nn.init.sparse_(s.pair.B, sparsity=1 - 1 / s.pair.B.shape[0], std=0.01)

    def _drift_resistant_projectors(self, task: TaskInfo) -> dict[str, Projector]:
        with lora_subtracted(self.lora_modules.values()):
            covariances = input_covariances(self.features, self, task, self.lora_modules)
        opts = self.options
        by_block = {block_of(name): drift_resistant_projector(C, opts.energy, opts.normalize_step)
                    for name, C in covariances.items()}
        return {s.name: by_block[s.block] for s in self.slices}

    def loss(self, out: MethodOutput, y: Tensor, task: TaskInfo) -> Tensor:
        triplet = augmented_triplet_loss(out.features, y, self.bank.prototypes, self.options.triplet_margin)
        return super().loss(out, y, task) + self.options.triplet_weight * triplet

    def after_backward(self, task: TaskInfo) -> None:
        self.rewriter.before_step(self.slices, self.projectors)

    def after_step(self, task: TaskInfo) -> None:
        self.rewriter.after_step(self.slices, self.projectors)

    def after_task(self, task: TaskInfo) -> dict:
        self._add_prototypes(task)
        dims = {s.block: p.basis.shape[1] for s in self.slices if (p := self.projectors.get(s.name))}
        drs_dims = [dims[b] for b in sorted(dims)]
        return {"structure": "per_task", "drs_dims": drs_dims, **self.rewriter.summary()}

    @torch.no_grad()
    def _add_prototypes(self, task: TaskInfo) -> None:
        """Class means of the task's training features, test transform, model at the end of the task."""
        was_training = self.training
        self.eval()
        for x, y in task.make_loader(task.train_eval_data, shuffle=False):
            self.bank.accumulate(self.features(x.to(task.device)).float(), y.to(task.device))
        self.bank.finalize(list(task.classes))
        self.train(was_training)

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """NME: −‖f̂ − p̂_c‖² for every seen class c (−inf for a class without a prototype)."""
        if not self.options.nme or len(self.bank) == 0:
            return super().predict(x)
        f = F.normalize(self.features(x).float(), dim=1)
        scores = f.new_full((len(f), self.heads.num_classes), float("-inf"))
        scores[:, self.bank.classes] = -_euclidean(f, self.bank.normalized().to(f)).square()
        return scores

    def extra_state(self) -> dict:
        return {"prototypes": self.bank.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        self.bank.load_state_dict({k: v.to(self.context.device) for k, v in state["prototypes"].items()})
