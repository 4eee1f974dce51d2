"""Continual-learning methods: one file per method, each registered with `@register_method`."""

import importlib
import pkgutil

from janus.methods.base import Method, MethodContext, MethodOutput, NoOptions, TaskInfo
from janus.methods.registry import (
    METHODS,
    build_method,
    build_options,
    method_class,
    register_method,
    resolve_config,
)

_INFRASTRUCTURE = {"base", "registry"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _INFRASTRUCTURE and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["METHODS", "Method", "MethodContext", "MethodOutput", "NoOptions", "TaskInfo", "build_method",
           "build_options", "method_class", "register_method", "resolve_config"]
