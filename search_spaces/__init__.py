"""Search spaces for `python -m study.run --search optuna`: one Python module per method (or per method and
benchmark), with the exact command that runs it in its docstring (the big_vision convention).

The format, which every module here follows:

* File name: the method name with '-' replaced by '_' (`search_spaces/seq_lora.py` for `seq-lora`). That
  module is the method's default space; more spaces for the same method take any other name
  (`search_spaces/janus_imagenet_r.py`) and are picked with `--search-space janus_imagenet_r`.
* `METHOD = "janus"`: the registered method (`janus.methods.METHODS`) the space belongs to.
* `SPACE = {"method.lambda_dml": tune.loguniform(1e-2, 1.0), "optim.lr": ..., ...}`: flat config keys
  (as in `ExperimentConfig.to_flat()`; method options as `method.<option>`) mapped to `ray.tune` domains
  (`tune.uniform`, `tune.loguniform`, `tune.choice`, `tune.randint`, ...; not `grid_search`). Every key
  must exist in the config schema, method keys in the method's `Options` dataclass
  (`tests/test_search_spaces.py` checks this for every module, and the study checks it before starting).
* The module docstring holds the exact command that runs the space.

Keys a study sets itself (`method.name`, `data.dataset`, `data.tasks`, `backbone.name`, `seed`) are not
searchable. Everything not in `SPACE` comes from the study's flags (`--preset`, `--set`).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from types import ModuleType

from janus.errors import UserError

RESERVED_KEYS = ("method.name", "data.dataset", "data.tasks", "backbone.name", "seed")


def module_name(method: str) -> str:
    """The default search-space module of a method: its name with '-' -> '_'."""
    return method.replace("-", "_")


def available() -> list[str]:
    """Names of every search-space module in this package."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load(name: str) -> ModuleType:
    """Import `search_spaces.<name>` and check its format; an unknown name is a `UserError`."""
    if name not in available():
        raise UserError(f"unknown search space {name!r}; choose from {', '.join(available())} "
                        "(or write search_spaces/<name>.py, see search_spaces/__init__.py)")
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except SyntaxError as error:
        raise UserError(f"search space {name!r}: {error.filename}:{error.lineno}: {error.msg}") from None
    except Exception as error:  # noqa: BLE001  (a user's module may raise anything on import)
        raise UserError(f"search space {name!r} failed to import: {type(error).__name__}: {error}") from None
    problems = format_problems(module) or key_problems(module)
    if problems:
        raise UserError(f"search space {name!r}: {problems[0]}")
    return module


def format_problems(module: ModuleType) -> list[str]:
    """What is wrong with a module's METHOD / SPACE / docstring (empty when it follows the format)."""
    from ray.tune.search.sample import Domain

    problems = []
    if not isinstance(getattr(module, "METHOD", None), str):
        problems.append("METHOD must be the method's registered name (a string)")
    space = getattr(module, "SPACE", None)
    if not isinstance(space, dict) or not space:
        return problems + ["SPACE must be a non-empty dict of config keys to ray.tune domains"]
    problems += [f"SPACE[{k!r}] is not a ray.tune domain (tune.uniform, tune.choice, ...)"
                 for k, v in space.items() if not isinstance(v, Domain)]
    problems += [f"SPACE key {k!r} is set by the study itself and cannot be searched"
                 for k in space if k in RESERVED_KEYS]
    if "python -m study.run" not in (module.__doc__ or ""):
        problems.append("the module docstring must hold the command that runs it (python -m study.run ...)")
    return problems


def key_problems(module: ModuleType) -> list[str]:
    """SPACE keys missing from the config schema (method keys: from the method's Options dataclass)."""
    from janus.config import ExperimentConfig
    from janus.methods import method_class

    schema = set(ExperimentConfig().to_flat())
    options = {f.name for f in dataclasses.fields(method_class(module.METHOD).Options)}
    problems = []
    for key in module.SPACE:
        section, _, option = key.partition(".")
        known = option in options if section == "method" else key in schema
        if not known:
            valid = sorted(options) if section == "method" else sorted(k for k in schema if k.startswith(section))
            problems.append(f"unknown key {key!r} for method {module.METHOD!r}; valid: {', '.join(valid)}")
    return problems
