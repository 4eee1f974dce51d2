"""Device, precision, seeding and run provenance (git SHA, package versions, peak memory)."""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import inspect
import os
import random
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from janus.errors import UserError

TRACKED_PACKAGES = ("torch", "timm", "ray", "optuna", "mlflow", "polars", "numpy")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"optim.device={name!r} but no CUDA device is visible; use --set optim.device=cpu")
    return device


def configure_device(device: torch.device) -> None:
    """On CUDA, let fp32 matmuls (OE's Σ x xᵀ of upcast activations) use TF32 tensor cores."""
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")
        torch.backends.cudnn.benchmark = True


def autocast(device: torch.device, precision: str):
    """bf16 autocast on CUDA when precision is auto/bf16; fp32 otherwise."""
    if precision not in ("auto", "fp32", "bf16"):
        raise UserError(f"unknown optim.precision {precision!r}; use auto, fp32 or bf16")
    if device.type == "cuda" and precision in ("auto", "bf16"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


# optim.compile's torch.compile backend; tests set "eager" (no C compiler, seconds instead of minutes)
COMPILE_BACKEND = "inductor"
# new graphs a task may add (the methods that add LoRA pairs per task measured 2-3)
RECOMPILES_PER_TASK = 4


def compile_backbone(backbone: torch.nn.Module, num_tasks: int) -> None:
    """optim.compile: torch.compile the backbone's forward in place (nn.Module.compile), so `backbone(x)` in
    every method runs compiled and the state-dict keys (checkpoints) stay the same. A structure that changes
    per task (new LoRA pairs, training and evaluation modes) recompiles on its first call, so the recompile
    limit grows with the task count: at torch's default of 8, InfLoRA fell back to eager during its third
    task and SD-LoRA by its sixth."""
    limit = RECOMPILES_PER_TASK * num_tasks + 8
    if "recompile_limit" in inspect.signature(torch.compile).parameters:     # newer torch: this module only
        backbone.compile(backend=COMPILE_BACKEND, recompile_limit=limit)
        return
    import torch._dynamo.config as dynamo_config

    dynamo_config.cache_size_limit = max(dynamo_config.cache_size_limit, limit)   # older torch: process-wide
    backbone.compile(backend=COMPILE_BACKEND)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every generator's state in plain containers and tensors (loadable with torch.load(weights_only=True))."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos),
                                                    int(has_gauss), float(cached)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def num_workers(requested: int, device: torch.device) -> int:
    """optim.num_workers, or on CUDA one decode worker per CPU this process may use (a Ray trial's
    --cpus-per-trial, which sets torch's thread count), at most 8; 0 (the main process) on the CPU."""
    if requested >= 0:
        return requested
    return max(1, min(8, torch.get_num_threads())) if device.type == "cuda" else 0


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return peak_rss_mb()


def peak_rss_mb() -> float:
    """This process's peak resident memory."""
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


@functools.lru_cache(maxsize=1)
def git_sha() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({os.cpu_count()} cores)"
