"""Continual-learning methods: one file per method, each registered with `@register_method`.

A new method is a new module here plus its name in `METHOD_MODULES` (importing it runs its decorator).
"""

import importlib

from janus.methods.base import Method, MethodContext, MethodOutput, NoOptions, TaskInfo
from janus.methods.registry import (
    METHODS,
    build_method,
    build_options,
    canonical_key,
    method_class,
    register_method,
    resolve_config,
)

# The method modules, in the order of the paper's tables (baselines first, then Janus-LoRA).
METHOD_MODULES = ("finetune", "seq_lora", "l2p", "dualprompt", "coda_prompt", "lora_gpm", "inflora", "sd_lora",
                  "lora_drs", "bilora", "keeplora", "loda", "janus")
for _module in METHOD_MODULES:
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["METHODS", "Method", "MethodContext", "MethodOutput", "NoOptions", "TaskInfo", "build_method",
           "build_options", "canonical_key", "method_class", "register_method", "resolve_config"]
