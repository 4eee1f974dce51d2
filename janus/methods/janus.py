"""Janus-LoRA: LoRA on K and V + Online Estimation (OE) + Gradient Rectification (GR) + Decoupled Margin
Loss (DML). See docs/method.md (section numbers below); the equations live in `janus/subspace.py`,
`janus/rectify.py` and `janus/margin.py`, each tested against a dense reference.

Per task t (§7):
* OE (§3.2): forward-pre-hooks on every adapted qkv accumulate C_l += Σ x xᵀ of the block's LN1 output
  during the ordinary training passes (no extra pass, no samples kept). At task end, V_l grows by the
  eigenvectors of the residual (I − V Vᵀ) Ĉ (I − V Vᵀ) needed to reach energy ε_t = ε_b + (ε_e − ε_b)·t/T.
* GR (§5.7): the optimizer's actual update (ΔA, ΔB) of every pair is rectified so that the composite
  B ΔA + ΔB A is (GR-T: as close as LoRA's tangent space allows to) Z Π with Π = I − V_l V_lᵀ; inactive on
  task 0, where no V exists. `gr.hook="grad"` rectifies raw gradients before the step instead (comparison).
* DML (§6.3): L = CE + λ · mean_i [max_c ⟨f̂_i, p̂_c⟩ − m_old]₊ over the old-class prototypes (§6.2).

Ablations (§10) are flag combinations: ① all off (= seq-lora), ② dml, ③ oe, ④ gr, ⑤ oe+gr, ⑥ oe+dml,
⑦ all. Two [OUR CHOICE] readings of the rows without one of OE/GR:
* OE without GR (③, ⑥) protects with "project ΔA only" (ΔA ← ΔA Π, the LoRA-GPM rule) on the OE basis:
  `protect_without_gr="project_a"` (or "none": OE then only feeds the diagnostics).
* GR without OE (④) needs some subspace (§11 item 4): `fallback_subspace="gpm"` builds it GPM-style from a
  post-task pass over `gpm_samples` training images (test transform, model at task end) with the same
  energy rule; "none" leaves GR without a basis (a no-op).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from janus.classifier import class_means
from janus.diagnostics import lowrank_interference_ratio
from janus.errors import UserError
from janus.lora import block_of
from janus.margin import PrototypeBank, danger, dml_loss
from janus.methods._lora_base import LoRAMethod
from janus.methods.base import MethodContext, MethodOutput, TaskInfo
from janus.methods.registry import register_method
from janus.projection import GRSettings, Projector, UpdateRewriter
from janus.subspace import ActivationRecorder, BlockBases, energy_threshold, post_task_statistics

CHOICES = {
    "criterion": ("eig", "eig_sq"),
    "oe_window": ("all", "last_epoch"),
    "fallback_subspace": ("gpm", "none"),
    "protect_without_gr": ("project_a", "none"),
    "dml_form": ("hinge", "softmax"),
    "prototypes": ("online", "pass"),
    "oe_precision": ("float64", "float32"),
}


@dataclass(frozen=True)
class JanusOptions:
    oe: bool = True
    # GR (§5): GR-T, the least-squares reading of "reverse-engineers ΔW_safe" (§5.2), on Adam's actual update
    # (§5.7); balance β = 1e-2: without it ΔA* ~ 1/‖B‖ while B is small, and the measured interference was
    # 2-20x higher. `method.gr=false` switches it off (ablations).
    gr: GRSettings = field(default_factory=GRSettings)
    dml: bool = True
    threshold: float = 0.97          # OE energy threshold ε_0 at t = 0 (§3.3; searched 0.90-0.995)
    threshold_end: float = 1.0       # the InfLoRA schedule's end value
    criterion: str = "eig"           # eig: GPM's σ²; eig_sq: InfLoRA's λ² quirk (§3.3)
    oe_precision: str = "float64"    # dtype of the task-end eigendecomposition (float32: faster on a GPU, §3.2)
    oe_window: str = "all"           # statistics over all epochs, or the last epoch only (§3.2)
    fallback_subspace: str = "gpm"   # the subspace GR uses when OE is off (ablation ④)
    gpm_samples: int = 125           # GPM's sample count for that post-task pass (docs/protocol.md §7.1)
    protect_without_gr: str = "project_a"  # OE without GR (ablations ③, ⑥)
    lambda_dml: float = 0.1          # λ_DML (§9.1; searched log 1e-2..1)
    margin: float = 0.3              # m_old = cos θ_m (§6.3; the danger threshold is 0.5)
    gamma: float = 0.0               # weight of the optional pull term
    margin_new: float = 0.7          # pull-term margin m_new
    dml_form: str = "hinge"          # hinge push, or the softmax form (§6.3)
    tau: float = 16.0                # softmax-form temperature
    prototypes: str = "online"       # class means from the last training epoch (no extra pass) or a post-task pass
    diagnostics: bool = True         # per-layer interference and danger after each task (§4, §6.4)

    def __post_init__(self):
        for name, valid in CHOICES.items():
            if getattr(self, name) not in valid:
                raise UserError(f"method.{name}={getattr(self, name)!r} is not one of {', '.join(valid)}")


@register_method("janus")
class JanusLoRA(LoRAMethod):
    Options = JanusOptions

    def __init__(self, backbone: nn.Module, options: JanusOptions, context: MethodContext):
        super().__init__(backbone, options, context)
        # End-of-task work stays on the training device: moments, bases and Σ_past Ĉ_t live there.
        self.bases = BlockBases(options.criterion, rule="oe", precision=options.oe_precision)   # V_l per block
        # Σ_past Ĉ_t per block, kept only for the interference diagnostics (OE itself needs only the bases), so
        # checkpoints carry these d×d moments (28 MB on ViT-B/16) only with method.diagnostics=true.
        self.past_moment: dict[str, torch.Tensor] = {}
        self.bank = PrototypeBank(context.feature_dim)
        self.recorder: ActivationRecorder | None = None
        self._danger: list[dict] = []          # danger() of each last-epoch batch
        self._last_epoch = False
        self.rewriter: UpdateRewriter | None = None    # set per task by before_task (None: nothing to protect)
        self._projectors: dict[str, Projector] = {}
        self._start_pairs: list[tuple[torch.Tensor, torch.Tensor]] = []

    # --- what runs when ----------------------------------------------------------------------------------
    @property
    def collects_moments(self) -> bool:
        return self.options.oe or self.options.diagnostics

    def _rule(self) -> str | None:
        """The update rule for the current task: GR, "project ΔA only", or None (task 0, or unprotected)."""
        if not self.bases.any_protected():
            return None
        if self.options.gr.enabled:
            return "rectify"
        if self.options.oe and self.options.protect_without_gr == "project_a":
            return "project_a"
        return None

    def before_task(self, task: TaskInfo) -> None:
        super().before_task(task)
        rule, o = self._rule(), self.options
        self.rewriter = None if rule is None else UpdateRewriter(
            rule, o.gr, track_violation=o.diagnostics)
        self._projectors = self.bases.projectors(self.slices, task.device, skip_empty=True)
        self._start_pairs = [(s.pair.A.detach().clone(), s.pair.B.detach().clone()) for s in self.slices]
        self._danger = []
        if self.collects_moments:
            self.recorder = ActivationRecorder(self.lora_modules).start()

    def before_epoch(self, task: TaskInfo, epoch: int) -> None:
        self._last_epoch = epoch == task.epochs - 1
        if self._last_epoch and self.recorder is not None and self.options.oe_window == "last_epoch":
            for accumulator in self.recorder.accumulators.values():
                accumulator.reset()

    # --- loss: CE + λ·DML; online prototypes and danger from the last epoch --------------------------------
    def loss(self, out: MethodOutput, y: torch.Tensor, task: TaskInfo) -> torch.Tensor:
        loss = super().loss(out, y, task)
        features = out.features.float()
        if self._last_epoch and self.training:
            self._observe_last_epoch(features.detach(), y)
        if self.options.dml and task.index > 0 and self.options.lambda_dml > 0:
            o = self.options
            push = dml_loss(features, self.bank.normalized(), o.margin, labels=y - task.offset, gamma=o.gamma,
                            margin_new=o.margin_new, form=o.dml_form, head_weight=self.heads.current.weight,
                            tau=o.tau)
            loss = loss + o.lambda_dml * push
        return loss

    def _observe_last_epoch(self, features: torch.Tensor, y: torch.Tensor) -> None:
        if self.options.prototypes == "online":
            self.bank.accumulate(features, y)
        if self.options.diagnostics and len(self.bank):
            self._danger.append(danger(features, self.bank.normalized(), y))

    # --- GR: rectify the optimizer's update (or the gradient) of every LoRA pair (_projected.UpdateRewriter) --
    def after_backward(self, task: TaskInfo) -> None:
        if self.rewriter is not None:
            self.rewriter.before_step(self.slices, self._projectors)

    def after_step(self, task: TaskInfo) -> None:
        if self.rewriter is not None:
            self.rewriter.after_step(self.slices, self._projectors)

    # --- end of task: OE update, prototypes, diagnostics ---------------------------------------------------
    def after_task(self, task: TaskInfo) -> dict:
        moments = self._stop_recording()
        diagnostics = self._diagnostics(task, moments) if self.options.diagnostics else {}
        if self.rewriter is not None:
            diagnostics.update(self.rewriter.summary())   # violation_raw / violation_applied of the steps
        self._update_bases(task, moments)
        if self.options.diagnostics:
            for name, moment in moments.items():
                past = self.past_moment.get(name)
                self.past_moment[name] = moment.clone() if past is None else past + moment
        self._add_prototypes(task)
        diagnostics["basis_dim"] = {site.block_name: self.bases.protected_dim(site.block) for site in self.lora_modules}
        return diagnostics

    def _stop_recording(self) -> dict[str, torch.Tensor]:
        if self.recorder is None:
            return {}
        self.recorder.stop()
        moments = {name: acc.mean() for name, acc in self.recorder.accumulators.items() if acc.count}
        self.recorder = None
        return moments

    def _update_bases(self, task: TaskInfo, moments: dict[str, torch.Tensor]) -> None:
        if not self.options.oe:
            if not (self.options.gr.enabled and self.options.fallback_subspace == "gpm"):
                return
            moments = self._gpm_pass(task)
        eps = energy_threshold(task.index, task.num_tasks, self.options.threshold, self.options.threshold_end)
        self.bases.update(moments, eps)

    def _gpm_pass(self, task: TaskInfo) -> dict[str, torch.Tensor]:
        batches = max(1, -(-self.options.gpm_samples // 32))
        loader = task.make_loader(task.train_eval_data, shuffle=True, seed=task.index, batch_size=32)
        self.eval()
        moments = post_task_statistics(lambda batch: self.features(batch[0].to(task.device)), loader,
                                       self.lora_modules, max_batches=batches)
        return moments

    def _add_prototypes(self, task: TaskInfo) -> None:
        """Online means from the last epoch; a post-task pass for `prototypes=pass` or for any class the
        last epoch never saw (e.g. with optim.max_steps_per_epoch)."""
        missing = list(task.classes)
        if self.options.prototypes == "online":
            added = self.bank.finalize()
            missing = sorted(set(task.classes) - set(self.bank.classes[-len(added):].tolist() if len(added) else []))
        if missing:
            self.bank.add(missing, class_means(self, task, missing))

    def _diagnostics(self, task: TaskInfo, moments: dict[str, torch.Tensor]) -> dict:
        interference = {}
        if task.index > 0:
            for s, (a0, b0) in zip(self.slices, self._start_pairs):
                past = self.past_moment[s.site]
                interference[s.name] = lowrank_interference_ratio(
                    a0, b0, s.pair.A.detach(), s.pair.B.detach(), s.module.scale, past)
        values = [d["nearest_old_cos"] for d in self._danger]
        centre = [d["own_centre_cos"] for d in self._danger]
        return {"interference": interference,
                "danger": float(sum(values) / len(values)) if values else None,
                "own_center": float(sum(centre) / len(centre)) if centre else None}

    # --- checkpoints (prediction: the base class, or the protocol's NME with eval.classifier=nme) -------------
    def extra_state(self) -> dict:
        return {"bases": self.bases.state(), "past_moment": self.past_moment, "bank": self.bank.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        bases = state["bases"]
        if bases and isinstance(next(iter(bases.values())), torch.Tensor):  # written before BlockBases: {name: V}
            bases = {block_of(name): {"basis": V, "mode": "remove"} for name, V in bases.items()}
        self.bases.load(bases, self.context.device)
        self.past_moment = {name: moment.to(self.context.device) for name, moment in state["past_moment"].items()}
        self.bank.load_state_dict(state["bank"])
