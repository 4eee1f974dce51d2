"""Method registry: `@register_method("name")` on a `Method` subclass, `build_method(...)` to create one.

Modelled on timm's model registry: no if/elif factory; every module in `janus/methods/` is imported by the
package so its decorator runs.
"""

from __future__ import annotations

import dataclasses

from torch import nn

from janus.config import ExperimentConfig, _build
from janus.errors import UserError
from janus.methods.base import Method, MethodContext

METHODS: dict[str, type[Method]] = {}


def register_method(name: str):
    def decorate(cls: type[Method]) -> type[Method]:
        if name in METHODS and METHODS[name] is not cls:
            raise ValueError(f"method {name!r} is registered twice ({METHODS[name].__name__}, {cls.__name__})")
        cls.name = name
        METHODS[name] = cls
        return cls

    return decorate


def method_class(name: str) -> type[Method]:
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; choose from {', '.join(sorted(METHODS))}")
    return METHODS[name]


def build_options(name: str, params: dict):
    """Validate `method.params` against the method's options dataclass (unknown keys -> UserError)."""
    return _build(method_class(name).Options, dict(params), prefix="method.")


def resolve_config(cfg: ExperimentConfig) -> ExperimentConfig:
    """The config with every method option spelled out (defaults included), as runs should record it."""
    options = build_options(cfg.method.name, cfg.method.params)
    params = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
    return dataclasses.replace(cfg, method=dataclasses.replace(cfg.method, params=params))


def build_method(cfg: ExperimentConfig, backbone: nn.Module, context: MethodContext) -> Method:
    cls = method_class(cfg.method.name)
    return cls(backbone, build_options(cfg.method.name, cfg.method.params), context)
