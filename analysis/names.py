"""Display names and paper order of methods, data sets and backbones (Janus-LoRA paper tables).

Unknown names are shown as they are and sorted after the known ones, so a new method needs no edit here
to appear in a table.
"""

from __future__ import annotations

# Paper order: baselines first, the proposed method last. `seq-lora` is the "Fine-Tuning" row of the Janus
# tables (one LoRA trained across tasks); `finetune` is full fine-tuning of the backbone.
METHODS = {
    "finetune": "Full Fine-Tuning",
    "seq-lora": "Fine-Tuning",
    "l2p": "L2P",
    "dualprompt": "DualPrompt",
    "coda-prompt": "CODA-Prompt",
    "lora-gpm": "LoRA-GPM",
    "inflora": "InfLoRA",
    "sd-lora": "SD-LoRA",
    "lora-drs": "LoRA-DRS",
    "bilora": "BiLoRA",
    "keeplora": "KeepLoRA",
    "loda": "LoDA",
    "janus": "Janus-LoRA",
}

DATASETS = {
    "imagenet-r": "ImageNet-R",
    "cifar100": "CIFAR-100",
    "imagenet100": "ImageNet-100",
    "domainnet": "DomainNet",
    "digits": "Digits",
    "synthetic": "Synthetic",
}

BACKBONES = {
    "vit": "Sup-21K",
    "vit-in1k": "Sup-21K/1K",
    "dino": "DINO",
    "sam": "SAM",
    "test": "Test-ViT",
}

# Subspace estimators of the OE-vs-GPM table (Table 5 of the paper).
ESTIMATORS = {"gpm": "GPM", "oe": "OE"}

METRICS = {"acc": "ACC", "maa": "MAA", "bwt": "BWT"}


def _order(table: dict, name: str) -> tuple[int, str]:
    keys = list(table)
    return (keys.index(name), "") if name in table else (len(keys), str(name))


def method_order(name: str) -> tuple[int, str]:
    return _order(METHODS, name)


def dataset_order(name: str) -> tuple[int, str]:
    return _order(DATASETS, name)


def backbone_order(name: str) -> tuple[int, str]:
    return _order(BACKBONES, name)


def method_name(name: str) -> str:
    return METHODS.get(name, name)


def dataset_name(name: str) -> str:
    return DATASETS.get(name, name)


def backbone_name(name: str) -> str:
    return BACKBONES.get(name, name)


def benchmark_name(dataset: str, tasks: int) -> str:
    """"ImageNet-R (T=10)": the data set and its number of tasks."""
    return f"{dataset_name(dataset)} (T={tasks})"


def janus_name(oe: bool | None, gr: bool | None, dml: bool | None) -> str:
    """Janus-LoRA with all three components (or unknown flags) is "Janus-LoRA"; otherwise name the parts on."""
    flags = {"OE": oe, "GR": gr, "DML": dml}
    if all(value is None or value for value in flags.values()):
        return METHODS["janus"]
    on = [part for part, value in flags.items() if value]
    return f"{METHODS['janus']} ({'+'.join(on) if on else 'no OE/GR/DML'})"


def method_label(method: str, gr: bool | None, oe: bool | None = None, dml: bool | None = None) -> str:
    """Row label of a method: "LoRA-GPM+GR" when a plug-in GR flag is on; Janus names its components."""
    if method == "janus":
        return janus_name(oe, gr, dml)
    return method_name(method) + ("+GR" if gr else "")
