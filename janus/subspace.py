"""Protected input subspaces: activation covariances, energy-threshold bases (OE, GPM, InfLoRA DualGPM).

See docs/method.md §3 (Online Estimation, OE) and docs/protocol.md §7 (GPM and InfLoRA energy rules).

Conventions: a basis is a (d, k) tensor with orthonormal columns (k may be 0).  A ``DualBasis`` additionally
carries InfLoRA's mode flag: in ``"remove"`` mode its columns span the protected (old-feature) subspace, in
``"retain"`` mode they span its complement, the directions updates may still use.  ``(basis, mode)`` is exactly
what ``janus.rectify`` takes as its right projector.  Eigen- and singular-value work runs in float64 (OE may
choose float32); bases come back in the dtype of the basis passed in (or of the statistic when there is none).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from typing_extensions import Self  # a torch dependency; typing.Self needs Python 3.11

from janus.errors import check_choice
from janus.lora import block_of

ENERGY_TOL = 1e-10  # ties at a threshold count as reached (cumulative sums carry ~1e-16 round-off)
CRITERIA = ("eig", "eig_sq")
MODES = ("remove", "retain")


# ---------------------------------------------------------------------------------------------------------------
# statistics


@contextmanager
def exact_matmul(device: torch.device):
    """Autocast off and, on CUDA, TF32 off: statistics are accumulated in the accumulator's own dtype."""
    previous = torch.backends.cuda.matmul.allow_tf32
    try:
        with torch.autocast(device_type=device.type, enabled=False):
            if device.type == "cuda":
                torch.backends.cuda.matmul.allow_tf32 = False
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


class CovarianceAccumulator:
    """Running uncentred second moment of layer inputs: C += Σ_tokens x xᵀ, n += #tokens.

    ``update(x)`` takes activations of shape (..., d), detached; every leading index is one token.
    ``mean()`` returns Ĉ = C / n.  With ``ema_decay`` = β the state is instead an EMA of per-batch means,
    Ĉ ← β Ĉ + (1 − β) (XᵀX / n_batch), initialised by the first batch (docs/method.md §3.2 step 1, EMA switch).
    "Last epoch only" is the caller calling ``reset()`` before that epoch.  See docs/method.md §3.2, docs/protocol.md §7.2.
    """

    def __init__(
        self, dim: int | None = None, dtype: torch.dtype = torch.float32, ema_decay: float | None = None
    ):
        if ema_decay is not None and not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {ema_decay}")
        self.dim, self.dtype, self.ema_decay = dim, dtype, ema_decay
        self.reset()

    def reset(self) -> None:
        self.moment: Tensor | None = None
        self.count = 0

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        """Add one batch.  Runs in ``self.dtype`` even when called inside an autocast region (the OE hooks fire
        during bf16 training forwards): a bf16 XᵀX summed over hundreds of steps drifts by tens of percent."""
        tokens = x.detach().reshape(-1, x.shape[-1]).to(self.dtype)
        if self.dim is not None and tokens.shape[1] != self.dim:
            raise ValueError(f"expected activations with last dimension {self.dim}, got {tokens.shape[1]}")
        self.dim = tokens.shape[1]
        with exact_matmul(tokens.device):
            if self.ema_decay is not None:
                batch_mean = (tokens.mT @ tokens) / max(tokens.shape[0], 1)
                first = self.moment is None
                self.moment = batch_mean if first else torch.lerp(batch_mean, self.moment, self.ema_decay)
            elif self.moment is None:
                self.moment = tokens.mT @ tokens
            else:
                self.moment.addmm_(tokens.mT, tokens)
        self.count += tokens.shape[0]


    def mean(self) -> Tensor:
        if self.moment is None or self.count == 0:
            raise RuntimeError("CovarianceAccumulator.mean() called before any update")
        return self.moment.clone() if self.ema_decay is not None else self.moment / self.count


def energy_threshold(t: int, num_tasks: int, start: float, end: float = 1.0) -> float:
    """ε_t = start + (end − start)·t/T, t the 0-based index of the task just learned (docs/method.md §3.3, docs/protocol.md §7.2)."""
    return start + (end - start) * t / num_tasks


def _as_basis(V: Tensor | None, dim: int, like: Tensor) -> Tensor:
    """A (d, k) basis in `like`'s dtype and device; None becomes (d, 0)."""
    if V is None:
        return torch.zeros(dim, 0, dtype=like.dtype, device=like.device)
    return V.to(device=like.device, dtype=like.dtype)


WORK_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def _symmetric(C: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    C = C.to(dtype)
    return (C + C.mT) / 2


def complement_basis(V: Tensor | None, dim: int | None = None) -> Tensor:
    """Orthonormal basis of span(V)^⊥ (d, d − k), from a complete QR.  See docs/protocol.md §7.2 (DualGPM)."""
    if V is None:
        return torch.eye(dim)
    Q = torch.linalg.qr(V.to(torch.float64), mode="complete")[0]
    return Q[:, V.shape[1] :].to(V.dtype)


def representation_from_covariance(C: Tensor) -> Tensor:
    """R = U diag(√λ) with C = U diag(λ) Uᵀ: a (d, d) matrix with RRᵀ = C.

    Its left singular vectors are C's eigenvectors and σ² = λ, so ``gpm_expand_basis(V, R, eps)`` applies the GPM
    σ²-rule of docs/protocol.md §7.1 to a covariance, whereas passing C itself applies it to λ² (InfLoRA, §7.2).
    """
    evals, evecs = torch.linalg.eigh(_symmetric(C))
    return (evecs * evals.clamp_min(0).sqrt()).to(C.dtype)


# ---------------------------------------------------------------------------------------------------------------
# OE: residual eigen-energy on a covariance (docs/method.md §3.2)


def _residual_spectrum(C: Tensor, V: Tensor) -> tuple[Tensor, Tensor]:
    """Eigenpairs of R = (I − VVᵀ) C (I − VVᵀ), eigenvalues descending and clamped at 0."""
    CV = C @ V
    R = C - V @ CV.mT - CV @ V.mT + V @ (V.mT @ CV) @ V.mT
    evals, evecs = torch.linalg.eigh((R + R.mT) / 2)
    return evals.flip(-1).clamp_min(0), evecs.flip(-1)


def _count_to_reach(covered: Tensor, energies: Tensor, total: Tensor, eps: float) -> int:
    """Smallest k ≥ 0 with (covered + Σ_{i≤k} e_i) / total ≥ ε; all of them if the rule never fires."""
    ratios = (covered + torch.cumsum(torch.cat([energies.new_zeros(1), energies]), 0)) / total
    reached = torch.nonzero(ratios >= eps - ENERGY_TOL)
    return int(reached[0]) if len(reached) else len(energies)


def _energy_split(C: Tensor, residual_evals: Tensor, criterion: str) -> tuple[Tensor, Tensor, Tensor]:
    """(per-direction energies, total energy, energy already covered) under the chosen criterion.

    eig:    e_i = λ_i, E_tot = tr Ĉ, E_old = E_tot − Σλ = tr(VᵀĈV).
    eig_sq: e_i = λ_i², E_tot = ‖Ĉ‖_F² (= Σ eig(Ĉ)²), E_old = E_tot − Σλ_i² (InfLoRA's λ² rule, docs/protocol.md §7.2).
    """
    if criterion == "eig":
        energies, total = residual_evals, torch.trace(C)
    elif criterion == "eig_sq":
        energies, total = residual_evals.square(), C.square().sum()
    else:
        raise ValueError(f"unknown energy criterion {criterion!r}; valid: {', '.join(CRITERIA)}")
    return energies, total, total - energies.sum()


def expand_basis(
    V: Tensor | None, C: Tensor, eps: float, criterion: str = "eig", max_dim: int | None = None,
    work_dtype: torch.dtype = torch.float64,
) -> Tensor:
    """OE basis expansion at the end of a task (docs/method.md §3.2 step 2).

    R = (I − VVᵀ) Ĉ (I − VVᵀ) = U diag(λ) Uᵀ (λ descending); k = the smallest count with
    (E_old + Σ_{i≤k} e_i) / E_tot ≥ ε (e = λ, or λ² with criterion "eig_sq", see ``_energy_split``);
    V ← [V, U[:, :k]], the new columns re-orthonormalised against V by QR (V's own columns are kept as they are).
    The result has at most ``max_dim`` (default d) columns; directions with λ = 0 are never added.
    ``C`` may be the mean or the sum of x xᵀ (the rule is scale-free). The eigendecomposition runs on C's device
    in ``work_dtype``: float64 by default; float32 (`method.oe_precision=float32`, ~3-10x faster on a GPU) picks
    the same k and spans the same space to ~1e-4 while the spectrum has no near-tie at the cut (tested).
    """
    d = C.shape[-1]
    C64 = _symmetric(C, work_dtype)
    V64 = _as_basis(V, d, C64)
    out_dtype = V.dtype if V is not None else C.dtype
    evals, evecs = _residual_spectrum(C64, V64)
    energies, total, covered = _energy_split(C64, evals, criterion)
    if total <= 0:
        return V64.to(out_dtype)
    k = _count_to_reach(covered, energies, total, eps)
    k = min(k, int((evals > ENERGY_TOL * evals[0]).sum()), (max_dim or d) - V64.shape[1])
    if k <= 0:
        return V64.to(out_dtype)
    new = evecs[:, :k] - V64 @ (V64.mT @ evecs[:, :k])
    return torch.cat([V64, torch.linalg.qr(new)[0]], dim=1).to(out_dtype)


def shrink_retained_basis(U: Tensor, C: Tensor, eps: float, criterion: str = "eig",
                          work_dtype: torch.dtype = torch.float64) -> Tensor:
    """OE expansion when the protected subspace is stored by its complement U ("retain" mode).

    The residual covariance restricted to span(U) is UᵀĈU = W diag(μ) Wᵀ (μ descending).  Removing its top j
    directions from U protects them; j is the smallest count with (E_old + Σ_{i≤j} e_i)/E_tot ≥ ε, exactly the
    rule of ``expand_basis`` (span(U) is the complement of the protected space).  Returns U W[:, j:].
    """
    C64 = _symmetric(C, work_dtype)
    U64 = U.to(C64)
    evals, evecs = torch.linalg.eigh(U64.mT @ C64 @ U64)
    evals, evecs = evals.flip(-1).clamp_min(0), evecs.flip(-1)
    energies, total, covered = _energy_split(C64, evals, criterion)
    if total <= 0:
        return U
    j = _count_to_reach(covered, energies, total, eps)
    return (U64 @ evecs[:, j:]).to(U.dtype)


# ---------------------------------------------------------------------------------------------------------------
# GPM on a representation matrix and InfLoRA's DualGPM (docs/protocol.md §7.1, §7.2)


def gpm_expand_basis(V: Tensor | None, R: Tensor, eps: float, max_dim: int | None = None) -> Tensor:
    """One GPM update for one layer, as the reference code computes it (docs/protocol.md §7.1).

    First task (V None or empty): R = UΣWᵀ, c_i = Σ_{m≤i} σ_m² / Σσ², keep k = max(#{c_i < ε}, 1) columns.
    Later: E = ‖R‖_F², R̂ = R − VVᵀR, walk R̂'s σ̂_i² / E from acc = (E − ‖R̂‖_F²)/E, adding while acc < ε;
    V ← [V, Û[:, :r]] truncated to d (or ``max_dim``) columns; r = 0 leaves V unchanged.
    With R = the covariance this is InfLoRA's λ² rule; with ``representation_from_covariance(C)`` the σ² rule.
    """
    d = R.shape[0]
    R64 = R.to(torch.float64)
    V64 = _as_basis(V, d, R64)
    out_dtype = V.dtype if V is not None else R.dtype
    cap = max_dim or d
    if V64.shape[1] == 0:
        U, S, _ = torch.linalg.svd(R64, full_matrices=False)
        ratios = torch.cumsum(S.square(), 0) / S.square().sum()
        k = max(int((ratios < eps - ENERGY_TOL).sum()), 1)
        return U[:, : min(k, cap)].to(out_dtype)
    total = R64.square().sum()
    residual = R64 - V64 @ (V64.mT @ R64)
    U, S, _ = torch.linalg.svd(residual, full_matrices=False)
    start = (total - residual.square().sum()) / total
    before_each = start + torch.cumsum(torch.cat([S.new_zeros(1), S.square() / total]), 0)[:-1]
    r = min(int((before_each < eps - ENERGY_TOL).sum()), int((S > ENERGY_TOL * S.amax()).sum()))
    if r == 0:
        return V64.to(out_dtype)
    return torch.cat([V64, U[:, :r]], dim=1)[:, :cap].to(out_dtype)


def gpm_shrink_retained_basis(U: Tensor, R: Tensor, eps: float) -> Tensor:
    """InfLoRA's DualGPM update in "retain" mode (U spans the free directions; docs/protocol.md §7.2).

    Ĉ = UUᵀR = Û Ŝ Ŵᵀ; starting from acc = ‖Ĉ‖_F²/‖R‖_F², remove directions while acc ≥ 1 − ε
    (acc −= ŝ_i²/‖R‖_F²); then U ← the top (k − r) left singular vectors of U − Û_r Û_rᵀ U.
    """
    R64, U64 = R.to(torch.float64), U.to(torch.float64)
    total = R64.square().sum()
    inside = U64 @ (U64.mT @ R64)
    Uh, S, _ = torch.linalg.svd(inside, full_matrices=False)
    remaining = inside.square().sum() / total - torch.cumsum(
        torch.cat([S.new_zeros(1), S.square() / total]), 0
    )
    r = min(int((remaining[:-1] >= 1 - eps - ENERGY_TOL).sum()), U.shape[1])
    if r == 0:
        return U
    reduced = U64 - Uh[:, :r] @ (Uh[:, :r].mT @ U64)
    return torch.linalg.svd(reduced, full_matrices=False)[0][:, : U.shape[1] - r].to(U.dtype)


@dataclass
class DualBasis:
    """A layer's protected subspace with InfLoRA's remove/retain bookkeeping (docs/protocol.md §7.2).

    ``basis`` (d, k): the protected directions in "remove" mode, their complement in "retain" mode.  After every
    update, a remove-basis with k > d/2 is replaced by its complement and the mode flips to "retain", so at most
    d/2 columns are stored.  Pass ``(dual.basis, dual.mode)`` to ``janus.rectify`` as the right projector.
    """

    basis: Tensor
    mode: str = "remove"

    @classmethod
    def empty(cls, dim: int, dtype: torch.dtype = torch.float32, device=None) -> DualBasis:
        return cls(torch.zeros(dim, 0, dtype=dtype, device=device), "remove")

    @property
    def dim(self) -> int:
        return self.basis.shape[0]

    def protected_basis(self) -> Tensor:
        """Orthonormal basis of the protected subspace, whatever the mode (diagnostics, InfLoRA's A design)."""
        return self.basis if self.mode == "remove" else complement_basis(self.basis)

    def protected_dim(self) -> int:
        return self.basis.shape[1] if self.mode == "remove" else self.dim - self.basis.shape[1]

    def update_oe(self, C: Tensor, eps: float, criterion: str = "eig",
                  work_dtype: torch.dtype = torch.float64) -> None:
        """OE update (docs/method.md §3.2): ``expand_basis`` in remove mode, ``shrink_retained_basis`` in retain."""
        if self.mode == "remove":
            self.basis = expand_basis(self.basis, C, eps, criterion, work_dtype=work_dtype)
        else:
            self.basis = shrink_retained_basis(self.basis, C, eps, criterion, work_dtype)
        self._flip_if_large()

    def update_gpm(self, R: Tensor, eps: float) -> None:
        """InfLoRA's ``update_DualGPM`` for one layer; R is the covariance (InfLoRA) or a representation matrix."""
        if self.mode == "remove":
            self.basis = gpm_expand_basis(self.basis, R, eps)
        else:
            self.basis = gpm_shrink_retained_basis(self.basis, R, eps)
        self._flip_if_large()

    def _flip_if_large(self) -> None:
        if self.mode == "remove" and self.basis.shape[1] > self.dim / 2:
            self.basis, self.mode = complement_basis(self.basis), "retain"


# ---------------------------------------------------------------------------------------------------------------
# activation hooks


class ActivationRecorder:
    """Feed each module's input (detached) to that name's ``CovarianceAccumulator`` while active.

    ``with ActivationRecorder({Site(0): blk.attn.qkv, ...}) as rec: ...`` registers forward-pre-hooks on entry
    and removes all of them on exit, also when the body raises.  ``start()``/``stop()`` do the same outside a
    ``with`` (e.g. from a method's before_task/after_task).  Set ``enabled = False`` or use ``paused()`` to skip
    recording (evaluation).  See docs/method.md §3.2 step 1 (statistics from the training forward passes).
    """

    def __init__(
        self,
        modules: Mapping[str, nn.Module],
        accumulators: Mapping[str, CovarianceAccumulator] | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        self.modules = dict(modules)
        if accumulators is None:
            accumulators = {name: CovarianceAccumulator(dtype=dtype) for name in self.modules}
        missing = sorted(set(self.modules) - set(accumulators))
        if missing:
            raise ValueError(f"no accumulator for modules: {', '.join(missing)}")
        self.accumulators = dict(accumulators)
        self.enabled = True
        self._handles: list = []

    def start(self) -> Self:
        if self._handles:
            raise RuntimeError("ActivationRecorder is already active")
        try:
            for name, module in self.modules.items():
                self._handles.append(module.register_forward_pre_hook(self._hook_for(name)))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook_for(self, name: str) -> Callable:
        accumulator = self.accumulators[name]

        def record_input(module: nn.Module, args: tuple) -> None:
            if self.enabled:
                accumulator.update(args[0])

        return record_input

    @contextmanager
    def paused(self):
        previous, self.enabled = self.enabled, False
        try:
            yield self
        finally:
            self.enabled = previous

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> bool:
        self.stop()
        return False


def post_task_statistics(
    model_forward: Callable[[object], object],
    loader: Iterable,
    modules: Mapping[str, nn.Module],
    dtype: torch.dtype = torch.float32,
    max_batches: int | None = None,
) -> dict[str, Tensor]:
    """GPM/InfLoRA-style extra pass (no grad): Ĉ_name = mean of x xᵀ over all tokens entering each module.

    ``model_forward(batch)`` runs the model on one loader batch (the caller unpacks the batch and sets eval mode).
    ``max_batches`` limits the pass (GPM samples a few batches).  See docs/protocol.md §7.1–§7.2, docs/baselines.md §7–§8.
    """
    with torch.no_grad(), ActivationRecorder(modules, dtype=dtype) as recorder:
        for index, batch in enumerate(loader):
            if max_batches is not None and index >= max_batches:
                break
            model_forward(batch)
    return {name: accumulator.mean() for name, accumulator in recorder.accumulators.items()}


# ------------------------------------------------------------------------------------------------------------
# data passes


def input_covariances(forward: Callable[[Tensor], object], module: nn.Module, task,
                      modules: Mapping[str, nn.Module], batch_size: int | None = None,
                      max_batches: int | None = None, shuffle: bool = False) -> dict[str, Tensor]:
    """Ĉ = mean x xᵀ over all tokens entering each of ``modules``, in one no-grad pass over the task's
    training images with the train transform (InfLoRA and LoRA-DRS run their passes on the training
    loader), ``module`` in eval mode.  ``batch_size``/``max_batches``/``shuffle`` sample a subset (GPM's
    125 samples).  See docs/protocol.md §7.1–§7.2, docs/baselines.md §7, §8 steps 1 and 4, §11.
    """
    loader = task.make_loader(task.train_data, shuffle=shuffle, seed=task.index, batch_size=batch_size)
    was_training = module.training
    module.eval()
    try:
        return post_task_statistics(lambda batch: forward(batch[0].to(task.device)), loader, modules,
                                    max_batches=max_batches)
    finally:
        module.train(was_training)


# ------------------------------------------------------------------------------------------------------------
# per-block protected subspaces (the bases the GR plug-in projects against)


class BlockBases:
    """One `DualBasis` per block, shared by its K and V slices (they read the same input, docs/method.md §2.1).

    rule "gpm": grown with the GPM rule and InfLoRA's DualGPM remove/retain bookkeeping (docs/protocol.md
    §7.1–§7.2; LoRA-GPM, InfLoRA). criterion "eig_sq": the rule applied to the covariance itself, i.e. to λ²
    (InfLoRA, §7.2); "eig": applied to a representation R with RRᵀ = Ĉ, i.e. to λ = σ² of the raw inputs (§7.1).
    rule "oe": Janus's Online Estimation (docs/method.md §3.2): the basis grows by the top eigenvectors of the
    residual of the task's moment (`expand_basis`), with the same criterion names on λ.
    Covariances may be keyed by `janus.lora.Site` or by module name; bases are keyed by block index.
    """

    RULES = ("gpm", "oe")

    def __init__(self, criterion: str = "eig_sq", rule: str = "gpm", precision: str = "float64"):
        check_choice("criterion", criterion, ("eig", "eig_sq"))
        check_choice("rule", rule, self.RULES)
        check_choice("oe_precision", precision, tuple(WORK_DTYPES))
        self.criterion, self.rule, self.work_dtype = criterion, rule, WORK_DTYPES[precision]
        self.bases: dict[int, DualBasis] = {}

    def update(self, covariances: Mapping[str, Tensor], eps: float) -> None:
        for name, C in covariances.items():
            dual = self.bases.setdefault(block_of(name), DualBasis.empty(C.shape[0], C.dtype, C.device))
            if self.rule == "oe":
                dual.update_oe(C, eps, self.criterion, self.work_dtype)
            else:
                dual.update_gpm(C if self.criterion == "eig_sq" else representation_from_covariance(C), eps)

    def protected_dim(self, block: int) -> int:
        """How many directions block `block` protects (0 before its first update)."""
        return self.bases[block].protected_dim() if block in self.bases else 0

    def any_protected(self) -> bool:
        return any(dual.protected_dim() for dual in self.bases.values())

    def projectors(self, slices, device: torch.device | None = None, skip_empty: bool = False) -> dict:
        """Π per slice (`janus.projection.Projector`): remove mode Π = I − MMᵀ, retain mode Π = MMᵀ (M the
        stored basis), for the `janus.lora.AdaptedSlice`s given; on `device` when given. `skip_empty` leaves
        out blocks that protect nothing (their Π is I)."""
        from janus.projection import Projector

        chosen = {s.name: self.bases[s.block] for s in slices if s.block in self.bases}
        if skip_empty:
            chosen = {name: dual for name, dual in chosen.items() if dual.protected_dim()}
        return {name: Projector(dual.basis if device is None else dual.basis.to(device), dual.mode)
                for name, dual in chosen.items()}

    def summary(self) -> dict:
        blocks = sorted(self.bases)
        return {"protected_dims": [self.bases[b].protected_dim() for b in blocks],
                "retain_blocks": sum(self.bases[b].mode == "retain" for b in blocks)}

    def state(self) -> dict:
        return {b: {"basis": d.basis.detach().cpu(), "mode": d.mode} for b, d in self.bases.items()}

    def load(self, state: Mapping, device: torch.device) -> None:
        self.bases = {int(b): DualBasis(s["basis"].to(device), s["mode"]) for b, s in state.items()}
