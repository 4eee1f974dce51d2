"""Training recipes a study applies before the user's `--set` overrides.

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
"""

from __future__ import annotations

import dataclasses

from janus.config import moved
from janus.errors import UserError
from janus.methods import method_class
from janus.pretrain import TINY_BACKBONES
from janus.recipes import training_recipe

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
