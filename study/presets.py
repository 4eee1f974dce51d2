"""Training recipes a study applies before the user's `--set` overrides.

* no `--preset`: on the tiny CPU backbones (`tiny-fmnist`, the embedded default, and the random-init `test`),
  the embedded recipe of `janus/recipes.py`, the same that `python -m janus` runs; on pretrained ViT-B backbones,
  224-pixel inputs and the `ExperimentConfig` defaults (the InfLoRA protocol: Adam 5e-4, batch 128,
  rank 10), with 5 epochs per task.
* `--preset paper`: the protocol defaults per data set (janus-lora.md §9.1, protocol.md §5): epochs, lr,
  batch, schedule, rank, and Janus' ε/λ/m where the method has those options; per-method optimiser rows
  of protocol.md §5 for the baselines whose recipe differs (fine-tuning, SD-LoRA, LoRA-DRS, prompts).
* `--preset smoke`: one epoch of two steps per task on a few images per class, for checking that a data
  set, backbone and method run end to end.

Method options (`method.*`) are applied only to methods whose options dataclass has them.
"""

from __future__ import annotations

import dataclasses

from janus.errors import UserError
from janus.methods import method_class
from janus.pretrain import TINY_BACKBONES
from janus.recipes import training_recipe

PRESETS = ("smoke", "paper")
# Tasks per data set when --tasks is not given (the benchmarks' usual splits; protocol.md §1.1).
DATASET_TASKS = {"cifar100": 10, "imagenet-r": 10, "domainnet": 5, "imagenet100": 10, "digits": 5, "fashion-mnist": 5,
                 "synthetic": 2}

# Backbones small enough for a CPU, trained with the embedded recipe at 32 px.
CPU_BACKBONES = ("test", *TINY_BACKBONES)
PRETRAINED = {"data.image_size": 224, "optim.epochs": 5}

PAPER = {
    "cifar100": {"optim.optimizer": "adam", "optim.lr": 5e-4, "optim.epochs": 20, "optim.batch_size": 128,
                 "optim.schedule": "inflora_cosine", "lora.rank": 10,
                 "method.eps_start": 0.95, "method.lambda_dml": 0.1, "method.margin": 0.3},
    "imagenet-r": {"optim.optimizer": "adam", "optim.lr": 5e-4, "optim.epochs": 50, "optim.batch_size": 128,
                   "optim.schedule": "inflora_cosine", "lora.rank": 10,
                   "method.eps_start": 0.98, "method.lambda_dml": 0.2, "method.margin": 0.3},
    "domainnet": {"optim.optimizer": "sgd", "optim.momentum": 0.9, "optim.lr": 5e-3, "optim.head_lr": 1e-2,
                  "optim.epochs": 5, "optim.batch_size": 128, "optim.schedule": "cosine", "lora.rank": 30,
                  "method.eps_start": 0.95, "method.lambda_dml": 0.1, "method.margin": 0.3},
    "imagenet100": {"optim.optimizer": "adam", "optim.lr": 5e-4, "optim.epochs": 20, "optim.batch_size": 128,
                    "optim.schedule": "inflora_cosine", "lora.rank": 10,
                    "method.eps_start": 0.97, "method.lambda_dml": 0.1, "method.margin": 0.3},
}
# protocol.md §5 rows that differ from the InfLoRA recipe, as (cifar100, imagenet-r, domainnet) epochs.
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
    return chosen


def applicable(overrides: dict, method: str) -> dict:
    """Drop `method.<option>` keys the method does not have (a recipe or --set aimed at another method)."""
    options = {f.name for f in dataclasses.fields(method_class(method).Options)}
    options |= {"name", "params"}
    return {k: v for k, v in overrides.items() if not k.startswith("method.") or k[len("method."):] in options}
