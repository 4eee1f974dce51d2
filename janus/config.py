"""Typed configuration of one experiment: frozen dataclasses with a strict `from_dict`.

Field names equal the constructor keyword names of what they configure (docs/architecture.md §3). A config
comes in as a nested dict (`{"optim": {"lr": 1e-3}}`) or a flat dotted one (`{"optim.lr": 1e-3}`, the form
Ray Tune and MLflow use); unknown keys fail with a message that names the key and the valid ones.
Method-specific hyperparameters live in `method.params` and are validated by the method's own options
dataclass (`janus.methods.build_method`).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from janus.errors import UserError


@dataclass(frozen=True)
class BackboneConfig:
    name: str = "test"            # vit | vit-in1k | dino | sam | test | any timm model name
    weights: str | None = None    # local checkpoint (.safetensors, .pth, .npz); None -> hub cache
    pretrained: bool = True       # False -> random init (speed checks, tests)
    drop_path_rate: float = 0.0   # the protocol code trains with stochastic depth off


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "digits"
    root: str | None = None       # None -> $JANUS_DATA, else ./data
    tasks: int = 5
    class_order: str = "identity"  # identity (Janus/InfLoRA protocol) | seeded (PyCIL rule)
    order_seed: int | None = None  # None -> the run seed decides a seeded order
    val_fraction: float = 0.1     # carved from each task's train split for search objectives
    image_size: int = 32          # 224 for the real benchmarks; small for the CPU default
    normalization: str = "none"   # none: inputs in [0, 1] as every published baseline; backbone: timm mean/std
    split_file: str | None = None  # ImageNet-R: CODA-Prompt yaml split; None -> seeded stratified 80/20
    split_seed: int = 0
    class_list: str | None = None  # ImageNet-100: file of wnids; None -> the PODNet subset
    domains: tuple[str, ...] = ("clipart", "infograph", "painting", "quickdraw", "real", "sketch")
    domainnet_crop_scale: tuple[float, float] = (0.08, 1.0)  # LoRA-DRS uses (0.7, 1.0)
    synthetic_classes: int = 10
    synthetic_train_per_class: int = 40
    synthetic_test_per_class: int = 20
    max_train_per_class: int | None = None  # cap for quick runs; None = all
    max_test_per_class: int | None = None
    skip_unreadable: bool = False  # skip (and count) missing, empty or non-image files instead of failing
    # the GPU data path (README "GPU data path"); the defaults keep the CPU results bitwise unchanged
    cache: str = "off"            # on: images decoded once into a memory-mapped uint8 cache (janus.data.cache)
    cache_dir: str | None = None  # None -> $JANUS_CACHE/decoded, else ~/.cache/janus/decoded
    cache_gpu_fraction: float = 0.3  # on CUDA a cached view below this share of free GPU memory is held there
    augment_on: str = "loader"    # loader: crop + flip in the loader | device: on the training device (cache=on)
    uint8_transfer: str = "auto"  # auto: on for CUDA | on | off: uint8 to the device, float + normalise there

    def __post_init__(self):
        one_of("data", self, {"cache": ("off", "on"), "augment_on": ("loader", "device"),
                              "uint8_transfer": ("auto", "on", "off")})
        if self.augment_on == "device" and self.cache != "on":
            raise UserError("data.augment_on=device crops the cached uint8 images on the device; add "
                            "--set data.cache=on (or use data.augment_on=loader)")
        if self.augment_on == "device" and self.uint8_transfer == "off":
            raise UserError("data.augment_on=device sends uint8 images to the device; drop "
                            "data.uint8_transfer=off (or use data.augment_on=loader)")
        if not 0.0 <= self.cache_gpu_fraction <= 1.0:
            raise UserError(f"data.cache_gpu_fraction must be in [0, 1] (0: keep the cache on the host), got "
                            f"{self.cache_gpu_fraction}")


@dataclass(frozen=True)
class LoraConfig:
    rank: int = 10                # InfLoRA/LoRA-DRS use 10 (DomainNet 30)
    scale: float = 1.0            # W = W0 + s·B·A; the InfLoRA family implicitly uses s = 1
    targets: tuple[str, ...] = ("k", "v")  # slices of timm's fused qkv
    structure: str = "shared"     # shared: one pair trained across tasks | per_task: new pair per task

    def __post_init__(self):
        positive("lora.rank", self.rank)


@dataclass(frozen=True)
class OptimConfig:
    optimizer: str = "adam"       # adam | sgd
    lr: float = 5e-4              # InfLoRA / Janus protocol default
    head_lr: float | None = None  # None -> lr
    momentum: float = 0.9         # sgd only
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    epochs: int = 5
    batch_size: int = 128
    eval_batch_size: int = 256    # evaluation and post-task passes; larger batches pay off on a GPU
    schedule: str = "inflora_cosine"  # inflora_cosine | cosine | constant
    precision: str = "auto"       # auto: bf16 autocast on CUDA, fp32 on CPU | fp32 | bf16
    device: str = "auto"          # auto | cpu | cuda | cuda:N
    num_workers: int = -1         # -1 -> min(8, cpus) on CUDA, 0 on CPU
    max_steps_per_epoch: int | None = None  # cap for smoke runs and benchmarks
    channels_last: bool = False   # inputs in channels-last memory format on the device
    compile: bool = False         # torch.compile the backbone's forward (nn.Module.compile, in place)

    def __post_init__(self):
        for name in ("epochs", "batch_size", "eval_batch_size"):
            positive(f"optim.{name}", getattr(self, name))
        one_of("optim", self, {"optimizer": ("adam", "sgd"), "schedule": ("inflora_cosine", "cosine", "constant"),
                               "precision": ("auto", "fp32", "bf16")})
        if self.lr <= 0:
            raise UserError(f"optim.lr must be positive, got {self.lr}")
        if self.max_steps_per_epoch is not None:
            positive("optim.max_steps_per_epoch", self.max_steps_per_epoch)


@dataclass(frozen=True)
class EvalConfig:
    classifier: str = "heads"     # heads: the method's own (per-task linear heads) | nme: nearest class mean
    merge_lora: str = "auto"      # fold LoRA into the qkv weights while evaluating: auto (on CUDA) | on | off

    def __post_init__(self):
        if self.classifier not in ("heads", "nme"):
            raise UserError(f"eval.classifier={self.classifier!r} is not one of heads, nme")
        if self.merge_lora not in ("auto", "on", "off"):
            raise UserError(f"eval.merge_lora={self.merge_lora!r} is not one of auto, on, off")

    def merges(self, device) -> bool:
        """Whether evaluation folds LoRA into the weights on `device` (auto: on CUDA, where it saves launches;
        the CPU default stays unmerged so CPU results do not move by float rounding)."""
        return self.merge_lora == "on" or (self.merge_lora == "auto" and device.type == "cuda")


@dataclass(frozen=True)
class MethodConfig:
    name: str = "seq-lora"
    params: dict = field(default_factory=dict)  # validated by the method's options dataclass


@dataclass(frozen=True)
class ExperimentConfig:
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    data: DataConfig = field(default_factory=DataConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: int = 0

    @classmethod
    def from_dict(cls, raw: dict | None) -> ExperimentConfig:
        """Build from a nested or flat dotted dict; unknown keys raise `UserError` naming the valid keys."""
        return _build(cls, nest(raw or {}), prefix="")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_flat(self) -> dict[str, Any]:
        """The `{"optim.lr": ...}` view used for logging and search spaces."""
        return flatten(self.to_dict())

    def replace(self, overrides: dict) -> ExperimentConfig:
        """A new config with flat or nested overrides applied (validated like `from_dict`)."""
        merged = nest(self.to_flat())
        _merge(merged, nest(overrides))
        return ExperimentConfig.from_dict(merged)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=list)


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """`--set KEY=VALUE` pairs (repeatable) -> {key: value}; values stay strings until `from_dict` types them."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects KEY=VALUE, got {pair!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def positive(name: str, value: int) -> None:
    if value < 1:
        raise UserError(f"{name} must be at least 1, got {value}")


def one_of(section: str, config, choices: dict[str, tuple[str, ...]]) -> None:
    """A one-line error for the first field of `config` whose value is not among its choices."""
    for name, valid in choices.items():
        if getattr(config, name) not in valid:
            raise UserError(f"unknown {section}.{name} {getattr(config, name)!r}; use one of {', '.join(valid)}")


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dict -> flat dotted dict; `method.params` entries become `method.<param>` (and a nested option
    section such as `gr` becomes `method.gr.<field>`)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if name == "method.params":
            flat.update(flatten(value, "method."))
        elif isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


# The one alias table: keys that moved keep working and mean the new key. A method option may also be
# qualified by its method (`method.lora-drs.margin`); the same renames apply after the method's name.
MOVED_KEYS = {
    "method.classifier": "eval.classifier",
    # the shared GR sub-config (janus, lora-gpm, lora-drs): one name per knob
    "method.gr_variant": "method.gr.variant", "method.gr_ridge": "method.gr.ridge",
    "method.gr_balance": "method.gr.balance", "method.gr_on": "method.gr.hook",
    "method.update_hook": "method.gr.hook",
    # the energy threshold of every subspace method (janus OE, lora-gpm, inflora)
    "method.eps_start": "method.threshold", "method.eps_end": "method.threshold_end",
    "method.energy_criterion": "method.criterion",
    "method.track_violation": "method.diagnostics",
    # a knob of one method whose old name meant another knob elsewhere: only the qualified key moves
    "method.lora-drs.margin": "method.lora-drs.triplet_margin",
}


def moved(key: str) -> str:
    """The current name of a key (MOVED_KEYS), also for method-qualified keys (`method.<name>.<option>`)."""
    if key in MOVED_KEYS:
        return MOVED_KEYS[key]
    parts = key.split(".")
    if parts[0] == "method" and len(parts) == 3 and f"method.{parts[2]}" in MOVED_KEYS:
        return f"method.{parts[1]}." + MOVED_KEYS[f"method.{parts[2]}"][len("method."):]
    return key


def nest(raw: dict) -> dict:
    """Flat dotted dict (or a mix) -> nested dict; `method.<x>...` other than name/params goes to params."""
    tree: dict = {}
    for key, value in raw.items():
        key = moved(key)
        parts = key.split(".")
        if parts[0] == "method" and len(parts) >= 2 and parts[1] not in ("name", "params"):
            parts = ["method", "params", *parts[1:]]
        node = tree
        for part in parts[:-1]:
            if part in node and not isinstance(node[part], dict) and parts[:2] == ["method", "params"]:
                node[part] = {"enabled": node[part]}   # `method.gr=true` then `method.gr.ridge=...`
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"config key {key!r} conflicts with a non-section value at {part!r}")
        if isinstance(value, dict) and isinstance(node.get(parts[-1]), dict):
            _merge(node[parts[-1]], value)
        elif isinstance(node.get(parts[-1]), dict) and parts[:2] == ["method", "params"]:
            node[parts[-1]]["enabled"] = value          # `method.gr.ridge=...` then `method.gr=true`
        else:
            node[parts[-1]] = value
    return tree


def _merge(into: dict, new: dict) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict) and key != "params":
            _merge(into[key], value)
        elif key == "params" and isinstance(into.get(key), dict):
            into[key] = {**into[key], **value}
        else:
            into[key] = value


def _build(cls, raw: dict, prefix: str):
    if not isinstance(raw, dict):
        raise UserError(f"config section {prefix.rstrip('.') or '<root>'} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    valid = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - valid)
    if unknown:
        raise UserError(f"unknown config key '{prefix}{unknown[0]}'; valid keys in "
                        f"{prefix.rstrip('.') or 'the config'}: {', '.join(sorted(valid))}")
    kwargs = {}
    defaults = None
    for name, value in raw.items():
        kind = hints[name]
        if is_dataclass(kind) and not isinstance(value, dict) and "enabled" in {f.name for f in fields(kind)}:
            value = {"enabled": value}           # `method.gr=false` means `method.gr.enabled=false`
        if is_dataclass(kind):
            if defaults is None and _has_defaults(cls):
                defaults = cls()
            base = getattr(defaults, name) if defaults is not None else None
            kwargs[name] = _build(kind, _merge_defaults(base, value), f"{prefix}{name}.")
        else:
            kwargs[name] = coerce(value, kind, f"{prefix}{name}")
    return cls(**kwargs)


def _has_defaults(cls) -> bool:
    return all(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
               for f in fields(cls))


def _merge_defaults(base, value):
    """A partial section (`{"enabled": False}`) on top of the owner's default for it, so that a method whose
    default section differs from the section class's defaults (GR off in lora-gpm) keeps its other fields."""
    if base is None or not is_dataclass(base) or not isinstance(value, dict):
        return value
    return {**{f.name: getattr(base, f.name) for f in fields(base)}, **value}


def coerce(value, kind, name: str):
    """Check and convert one value to its annotated type (int, float, str, bool, tuples, Optionals)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in ("none", "null"))):
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(value, inner[0], name)
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config key {name!r} expects a list, got {value!r}")
        item = args[0]
        return tuple(coerce(v, item, name) for v in value)
    if kind is dict or origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"config key {name!r} expects a mapping, got {value!r}")
        return dict(value)
    return _coerce_scalar(value, kind, name)


def _coerce_scalar(value, kind, name: str):
    if kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if isinstance(value, (bool, int)) and value in (0, 1):
            return bool(value)
    elif kind is int:
        if isinstance(value, bool):
            pass
        elif isinstance(value, int) or (isinstance(value, float) and value.is_integer()) or isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif kind is str:
        if isinstance(value, str):
            return value
    else:
        return value
    raise UserError(f"config key {name!r} expects {kind.__name__}, got {value!r}")
