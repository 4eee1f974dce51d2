"""What each trial of a study runs: the cells (method x dataset x backbone), the presets' recipes they start
from, and the flat trial configs Tune carries.

Cells: one resolved set of overrides per method x dataset x backbone (seeds come later).

Precedence, lowest first: `ExperimentConfig` defaults < the preset's recipe (below) < the
cell's identity (method, data set, backbone, tasks) < --data-root / --weights < --set overrides.

Presets: the training recipes a study applies before the user's `--set` overrides.

* no `--preset`: on the tiny CPU backbones (`tiny-fmnist`, the embedded default, and the random-init `test`),
  the embedded recipe of `janus/recipes.py`, the same that `python -m janus` runs; on pretrained ViT-B backbones,
  224-pixel inputs and the `ExperimentConfig` defaults (the InfLoRA protocol: Adam 5e-4, batch 128,
  rank 10), with 5 epochs per task.
* `--preset paper`: the protocol defaults per data set (docs/protocol.md §5): epochs, lr, batch, schedule, rank;
  per-method optimiser rows of docs/protocol.md §5 for the baselines whose recipe differs (fine-tuning, SD-LoRA,
  prompts); and every method's own options per data set from its own paper (`PAPER_OPTIONS`, written as
  method-qualified keys `method.<name>.<option>`, so that no method gets another method's margin or threshold).
* `--preset smoke`: one epoch of two steps per task on a few images per class, for checking that a data
  set, backbone and method run end to end.

Method options (`method.<option>`) are applied only to methods whose options dataclass has them, and
`method.<name>.<option>` only to method <name>.

Trial configs: the flat override dicts that Tune trials carry, and their resolution.

A Tune trial's config holds only overrides of `ExperimentConfig` defaults, as flat dotted keys
(`{"method.name": "janus", "optim.lr": 1e-3, ...}`): a grid or replicate trial carries them under `cell`
(one `tune.grid_search` entry per method x dataset x backbone x seed), a search trial at the top level (the
study's constants plus the values Optuna suggested). `resolve` turns them into the typed config every
record uses: the method's options complete with their defaults.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path

from janus.config import ExperimentConfig, moved
from janus.data.roots import resolve_root
from janus.errors import UserError
from janus.methods import canonical_key, method_class, resolve_config
from janus.pretrain import TINY_BACKBONES
from janus.recipes import training_recipe
from study.settings import StudySettings

PRESETS = ("smoke", "paper")
# Tasks per data set when --tasks is not given (the benchmarks' usual splits; docs/protocol.md §1.1).
DATASET_TASKS = {"cifar100": 10, "imagenet-r": 10, "domainnet": 5, "imagenet100": 10, "digits": 5, "fashion-mnist": 5,
                 "synthetic": 2}

# Backbones small enough for a CPU, trained with the embedded recipe at 32 px.
CPU_BACKBONES = ("test", *TINY_BACKBONES)
PRETRAINED = {"data.image_size": 224, "optim.epochs": 5}

# The shared training recipe per data set (docs/protocol.md §5, the InfLoRA protocol) ...
PAPER = {
    "cifar100": {"optim.optimizer": "adam", "optim.lr": 5e-4, "optim.epochs": 20, "optim.batch_size": 128,
                 "optim.schedule": "inflora_cosine", "lora.rank": 10},
    "imagenet-r": {"optim.optimizer": "adam", "optim.lr": 5e-4, "optim.epochs": 50, "optim.batch_size": 128,
                   "optim.schedule": "inflora_cosine", "lora.rank": 10},
    "domainnet": {"optim.optimizer": "sgd", "optim.momentum": 0.9, "optim.lr": 5e-3, "optim.head_lr": 1e-2,
                  "optim.epochs": 5, "optim.batch_size": 128, "optim.schedule": "cosine", "lora.rank": 30},
    "imagenet100": {"optim.optimizer": "adam", "optim.lr": 5e-4, "optim.epochs": 20, "optim.batch_size": 128,
                    "optim.schedule": "inflora_cosine", "lora.rank": 10},
}
# ... and each method's own options per data set, from its own paper or code (the source beside each row).
# Keys are the method's option names; a data set missing from a method's row keeps the option defaults.
PAPER_OPTIONS = {
    # Janus-LoRA (docs/method.md §9.1): ε_0, λ_DML, m_old per data set
    "janus": {"cifar100": {"threshold": 0.95, "lambda_dml": 0.1, "margin": 0.3},
              "imagenet-r": {"threshold": 0.98, "lambda_dml": 0.2, "margin": 0.3},
              "domainnet": {"threshold": 0.95, "lambda_dml": 0.1, "margin": 0.3},
              "imagenet100": {"threshold": 0.97, "lambda_dml": 0.1, "margin": 0.3}},
    # InfLoRA (official code `lamb`, docs/baselines.md §8 step 4): λ = 0.95 / 0.98 / 0.95
    "inflora": {"cifar100": {"threshold": 0.95}, "imagenet-r": {"threshold": 0.98},
                "domainnet": {"threshold": 0.95}},
    # LoRA-GPM (docs/baselines.md §7): InfLoRA's λ per data set, the projection it derives from
    "lora-gpm": {"cifar100": {"threshold": 0.95}, "imagenet-r": {"threshold": 0.98},
                 "domainnet": {"threshold": 0.95}},
    # LoRA-DRS (official code, docs/baselines.md §11): ATL weight λ and triplet margin per data set
    "lora-drs": {"cifar100": {"triplet_weight": 0.05, "triplet_margin": 1.0},
                 "imagenet-r": {"triplet_weight": 0.2, "triplet_margin": 2.0},
                 "domainnet": {"triplet_weight": 0.1, "triplet_margin": 2.0}},
}
# docs/protocol.md §5 rows that differ from the InfLoRA recipe, as (cifar100, imagenet-r, domainnet) epochs.
PAPER_METHOD = {
    "finetune": ({"optim.optimizer": "adam", "optim.lr": 5e-5, "optim.schedule": "cosine"}, (20, 50, 5)),
    "sd-lora": ({"optim.optimizer": "sgd", "optim.momentum": 0.9, "optim.weight_decay": 0.0,
                 "optim.schedule": "constant"}, (20, 20, 10)),
    "coda-prompt": ({"optim.optimizer": "adam", "optim.lr": 1e-3}, (20, 50, 5)),
    "dualprompt": ({"optim.optimizer": "adam", "optim.lr": 1e-3}, (20, 50, 5)),
    "l2p": ({"optim.optimizer": "adam", "optim.lr": 1e-3}, (20, 50, 5)),
}
SD_LORA_LR = {"cifar100": 8e-3, "imagenet-r": 1e-2, "domainnet": 2e-2, "imagenet100": 8e-3}
SMOKE = {"optim.epochs": 1, "optim.max_steps_per_epoch": 2, "data.max_train_per_class": 4,
         "data.max_test_per_class": 4}


def recipe(preset: str | None, dataset: str, backbone: str, method: str) -> dict:
    """The overrides a preset gives one (dataset, backbone, method) cell."""
    size = {"data.image_size": 32 if backbone in CPU_BACKBONES else 224}
    if preset == "smoke":
        chosen = {**size, **SMOKE}
    elif preset == "paper":
        chosen = {**size, **paper_recipe(dataset, method)}
    elif preset is None:
        chosen = training_recipe(method) if backbone in CPU_BACKBONES else dict(PRETRAINED)
    else:
        raise UserError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)} (or none)")
    return applicable(chosen, method)


def paper_recipe(dataset: str, method: str) -> dict:
    if dataset not in PAPER:
        raise UserError(f"--preset paper has no protocol for data set {dataset!r} (only {', '.join(PAPER)}); "
                        "drop --preset or use --preset smoke")
    chosen = {**PAPER[dataset], "data.image_size": 224}
    if method in PAPER_METHOD:
        extra, epochs = PAPER_METHOD[method]
        index = ("cifar100", "imagenet-r", "domainnet").index(dataset) if dataset != "imagenet100" else 0
        chosen.update({**extra, "optim.epochs": epochs[index]})
    if method == "sd-lora":
        chosen["optim.lr"] = SD_LORA_LR[dataset]
    own = PAPER_OPTIONS.get(method, {}).get(dataset, {})
    chosen.update({f"method.{method}.{option}": value for option, value in own.items()})
    return chosen


def applicable(overrides: dict, method: str) -> dict:
    """The overrides that concern `method`: every non-method key, `method.<option>` when the method has that
    option (same name, same knob), and `method.<name>.<option>` only for method <name>."""
    return {k: v for k, v in overrides.items() if concerns(k, method)}


def concerns(key: str, method: str) -> bool:
    from janus.methods import METHODS

    if not key.startswith("method."):
        return True
    head = moved(key).split(".")[1]
    if head in METHODS:
        return head == method
    return head in {"name", "params"} | {f.name for f in dataclasses.fields(method_class(method).Options)}


CELL = "cell"


def trial_overrides(tune_config: dict) -> dict:
    """The flat overrides in a Tune trial config (top-level keys, then the grid's `cell` on top)."""
    flat = {k: v for k, v in tune_config.items() if k != CELL}
    flat.update(tune_config.get(CELL, {}))
    return flat


def resolve(overrides: dict) -> ExperimentConfig:
    """Validated config with the method's options filled in (unknown keys -> UserError naming them)."""
    return resolve_config(ExperimentConfig.from_dict(overrides))


def trial_label(overrides: dict) -> str:
    """A short readable name: method-dataset-backbone-tT-sSEED; an ablation row of Janus-LoRA adds the parts
    it switches off (janus-no-gr-...)."""
    get = overrides.get
    off = "".join(f"-no-{part}" for part in ("oe", "gr", "dml")
                  if False in (get(f"method.{part}"), get(f"method.{part}.enabled")))
    return (f"{get('method.name', 'seq-lora')}{off}-{get('data.dataset', 'digits')}-{get('backbone.name', 'test')}"
            f"-t{get('data.tasks', 5)}-s{get('seed', 0)}").replace("/", "_")


def trial_name(trial) -> str:
    """Tune `trial_name_creator`: the readable label plus the trial id (unique within a study)."""
    return f"{trial_label(trial_overrides(trial.config))}_{trial.trial_id}"


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
        rule = energy_rule(janus)
        if energy_rule(gpm) != rule:
            extra.append(Cell("lora-gpm", gpm.dataset, gpm.backbone, {**gpm.overrides, **rule}))
    return extra


def energy_rule(cell: Cell) -> dict:
    """{"method.threshold": ..., "method.criterion": ...} of a cell's resolved config."""
    params = resolve(cell.with_seed(0)).method.params
    return {key: params[key.removeprefix("method.")] for key in RULE_KEYS}


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
