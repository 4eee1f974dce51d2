"""Checks run by the driver before Ray starts, so that a user's mistake is one line and exit code 2.

Every cell's config is resolved (unknown `--set` keys, bad method options), every data set is built once
(unknown names, missing files, a task count that does not divide the classes), every backbone is built
once on the meta device (unknown names, missing weights: reads the checkpoint, allocates nothing; a
`janus.pretrain` backbone is built into its cache first, when missing), and
every search space is loaded and checked against the config schema.
"""

from __future__ import annotations

import warnings
from types import ModuleType

import search_spaces
from janus.errors import UserError
from study.cells import Cell, resolve
from study.settings import StudySettings


def check_study(settings: StudySettings, cells: list[Cell]) -> dict[str, ModuleType]:
    """Validate everything cheap to validate; returns the search space of each method (if searching)."""
    configs = [resolve(cell.with_seed(settings.seeds[0])) for cell in cells]
    if "optim.device" in settings.overrides:
        from janus.runtime import resolve_device

        resolve_device(configs[0].optim.device)  # cuda on a machine without one: one line now, not per trial
    mean_std = check_backbones(configs)
    check_data(configs, mean_std)
    return search_spaces_for(settings) if settings.search == "optuna" else {}


def check_backbones(configs) -> dict:
    """Build each backbone once on the meta device; returns its input mean/std per backbone config."""
    import torch

    from janus.backbone import build_backbone, data_mean_std
    from janus.pretrain import TINY_BACKBONES, ensure_backbone

    for config in configs:  # built here once, with its progress, before any trial could build it too
        backbone = config.backbone
        if backbone.name in TINY_BACKBONES and backbone.pretrained and not backbone.weights:
            ensure_backbone(backbone.name, config.data.root)
    found = {}
    for backbone, size in {(c.backbone, c.data.image_size) for c in configs}:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")  # "copying ... to a meta parameter is a no-op", by design
            found[backbone] = data_mean_std(build_backbone(backbone, img_size=size))
    return found


def check_data(configs, mean_std: dict) -> None:
    from janus.data import build_scenario

    for data, (seed, backbone) in {c.data: (c.seed, c.backbone) for c in configs}.items():
        build_scenario(data, seed, mean_std=mean_std[backbone])


def search_spaces_for(settings: StudySettings) -> dict[str, ModuleType]:
    """Method -> its search space: an explicit --search-space for that method, else its own module."""
    chosen = {}
    for name in settings.search_spaces:
        module = search_spaces.load(name)
        if module.METHOD not in settings.methods:
            raise UserError(f"search space {name!r} is for method {module.METHOD!r}, which is not in --method "
                            f"({', '.join(settings.methods)})")
        chosen[module.METHOD] = module
    for method in settings.methods:
        if method not in chosen:
            default = search_spaces.module_name(method)
            if default not in search_spaces.available():
                raise UserError(f"no search space for method {method!r}: write search_spaces/{default}.py "
                                "(format in search_spaces/__init__.py) or pass --search-space")
            chosen[method] = search_spaces.load(default)
    return chosen
