"""Method registry: `@register_method("name")` on a `Method` subclass, `build_method(...)` to create one.

Modelled on timm's model registry: no if/elif factory; every module in `janus/methods/` is imported by the
package so its decorator runs.
"""

from __future__ import annotations

import dataclasses

from torch import nn

from janus.config import ExperimentConfig, _build, moved
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
    """Validate `method.params` against the method's options dataclass (unknown keys -> UserError).

    `params` may hold sections qualified by a method name (`{"lora-drs": {"margin": 2.0}}`, from the key
    `method.lora-drs.margin`): the section of method `name` overrides the unqualified options; a section of
    another method is an error (a study drops those before building a trial's config)."""
    return _build(method_class(name).Options, own_params(name, params), prefix="method.")


def own_params(name: str, params: dict) -> dict:
    """The unqualified options with method `name`'s qualified section on top (its renamed keys resolved: an
    unqualified `method.margin` is never LoRA-DRS's triplet margin)."""
    others = sorted(k for k in params if k in METHODS and k != name)
    if others:
        section = params[others[0]]
        key = next(iter(section), "...") if isinstance(section, dict) else "..."
        raise UserError(f"config key 'method.{others[0]}.{key}' is an option of method {others[0]}, but "
                        f"method.name is {name}; set method.name={others[0]} or drop the key")
    own = {k: v for k, v in params.items() if k not in METHODS}
    for key, value in (params.get(name) or {}).items():
        key = method_key(name, key)
        if isinstance(value, dict) and isinstance(own.get(key), dict):
            value = {**own[key], **value}
        own[key] = value
    return own


def method_key(name: str, option: str) -> str:
    """An option's current name for method `name` (the method-qualified renames of config.MOVED_KEYS)."""
    qualified = moved(f"method.{name}.{option}")
    return qualified.split(".", 2)[2] if qualified.startswith(f"method.{name}.") else option


def canonical_key(key: str, method: str) -> str:
    """The flat key under which a resolved config of `method` records `key`: renames resolved, the method's
    qualification dropped (`method.lora-drs.margin` -> `method.triplet_margin`)."""
    key = moved(key)
    parts = key.split(".")
    if parts[0] == "method" and len(parts) >= 3 and parts[1] == method:
        return "method." + ".".join([method_key(method, parts[2]), *parts[3:]])
    return key


def resolve_config(cfg: ExperimentConfig) -> ExperimentConfig:
    """The config with every method option spelled out (defaults included), as runs should record it."""
    params = dataclasses.asdict(build_options(cfg.method.name, cfg.method.params))
    return dataclasses.replace(cfg, method=dataclasses.replace(cfg.method, params=params))


def build_method(cfg: ExperimentConfig, backbone: nn.Module, context: MethodContext) -> Method:
    cls = method_class(cfg.method.name)
    return cls(backbone, build_options(cfg.method.name, cfg.method.params), context)
