"""The study's cells: one resolved set of overrides per method x dataset x backbone (seeds come later).

Precedence, lowest first: `ExperimentConfig` defaults < the preset's recipe (study/presets.py) < the
cell's identity (method, data set, backbone, tasks) < --data-root / --weights < --set overrides.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from janus.data.roots import resolve_root
from janus.errors import UserError
from study.configs import resolve
from study.presets import DATASET_TASKS, applicable, recipe
from study.settings import StudySettings

# Keys the study's own flags set; `--set` may not change them.
IDENTITY_FLAGS = {"method.name": "--method", "data.dataset": "--dataset", "backbone.name": "--backbone",
                  "data.tasks": "--tasks", "seed": "--seeds"}
# Config keys that are paths: made absolute, because a trial runs in another working directory.
PATH_KEYS = ("data.root", "data.split_file", "data.class_list", "backbone.weights")


@dataclass(frozen=True)
class Cell:
    method: str
    dataset: str
    backbone: str
    overrides: dict   # flat config overrides, without the seed

    def with_seed(self, seed: int) -> dict:
        return {**self.overrides, "seed": seed}


# Janus-LoRA's ablation rows ①-⑦ as (OE, GR, DML) (janus/methods/janus.py; ⑦ is the full method).
ABLATION_FLAGS = [(False, False, False), (False, False, True), (True, False, False), (False, True, False),
                  (True, True, False), (True, False, True), (True, True, True)]


ABLATION_KEYS = ("method.oe", "method.gr.enabled", "method.dml")
RULE_KEYS = ("method.threshold", "method.criterion")


def build_cells(settings: StudySettings) -> list[Cell]:
    """Every method x dataset x backbone of the study, in flag order; with `ablation`, Janus-LoRA once per
    ablation row."""
    check_overrides(settings)
    cells = []
    for d, b, m in itertools.product(settings.datasets, settings.backbones, settings.methods):
        overrides = cell_overrides(settings, m, d, b)
        variants = ABLATION_FLAGS if settings.ablation and m == "janus" else [None]
        for flags in variants:
            extra = {} if flags is None else dict(zip(ABLATION_KEYS, flags))
            cells.append(Cell(m, d, b, {**overrides, **extra}))
    return cells + (matched_gpm_cells(cells) if settings.ablation else [])


def matched_gpm_cells(cells: list[Cell]) -> list[Cell]:
    """With the ablation, LoRA-GPM once more at Janus's energy rule (threshold and criterion), so that the
    OE-vs-GPM table compares the two estimators and nothing else (analysis.layouts.oe_vs_gpm_table)."""
    extra = []
    for gpm in [c for c in cells if c.method == "lora-gpm"]:
        janus = next((c for c in cells if c.method == "janus" and (c.dataset, c.backbone) == (gpm.dataset,
                                                                                             gpm.backbone)), None)
        if janus is None:
            continue
        rule = {key: resolve(janus.with_seed(0)).method.params[key.split(".")[1]] for key in RULE_KEYS}
        if all(gpm.overrides.get(k, resolve(gpm.with_seed(0)).method.params[k.split(".")[1]]) == v
               for k, v in rule.items()):
            continue
        extra.append(Cell("lora-gpm", gpm.dataset, gpm.backbone, {**gpm.overrides, **rule}))
    return extra


def cell_overrides(settings: StudySettings, method: str, dataset: str, backbone: str) -> dict:
    chosen = recipe(settings.preset, dataset, backbone, method)
    chosen.update({"method.name": method, "data.dataset": dataset, "backbone.name": backbone,
                   "data.tasks": settings.tasks or DATASET_TASKS.get(dataset, 5),
                   "data.root": settings.data_root or str(resolve_root(None).resolve())})
    if settings.weights and backbone != "test":
        chosen["backbone.weights"] = settings.weights
    chosen.update(absolute_paths(applicable(settings.overrides, method)))
    return typed(chosen, method)


def typed(overrides: dict, method: str) -> dict:
    """The overrides with the config's types ('3' from --set becomes 3; tuples become lists for Tune), under
    the keys the resolved config records (`method.gr` -> `method.gr.enabled`, qualification dropped)."""
    from janus.methods import canonical_key

    flat = resolve(overrides).to_flat()
    result = {}
    for key in overrides:
        key = canonical_key(key, method)
        key = key if key in flat or f"{key}.enabled" not in flat else f"{key}.enabled"
        result[key] = list(flat[key]) if isinstance(flat[key], tuple) else flat[key]
    return result


def check_overrides(settings: StudySettings) -> None:
    """--set may not replace a flag, and a method option must belong to some method of the study."""
    from janus.methods import method_class

    for key in settings.overrides:
        if key in IDENTITY_FLAGS:
            raise UserError(f"--set {key}=... is chosen with {IDENTITY_FLAGS[key]}; use that flag instead")
        if key.startswith("method.") and not any(applicable({key: 0}, m) for m in settings.methods):
            options = sorted({f for m in settings.methods for f in method_class(m).Options.__dataclass_fields__})
            raise UserError(f"unknown config key {key!r}: no method of this study ({', '.join(settings.methods)}) "
                            f"has it; their options: {', '.join(options) or 'none'}")
    pretrained = [b for b in settings.backbones if b != "test"]
    if settings.weights and len(pretrained) != 1:
        raise UserError(f"--weights names one checkpoint, but the study has {len(pretrained)} pretrained "
                        f"backbones ({', '.join(pretrained) or 'none'}); run one backbone per study")


def absolute_paths(overrides: dict) -> dict:
    return {k: str(Path(v).expanduser().resolve()) if k in PATH_KEYS and v not in (None, "", "None") else v
            for k, v in overrides.items()}
