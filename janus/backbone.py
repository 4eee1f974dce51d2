"""timm ViT factory: short names for the paper's backbones, local weights, a frozen base.

Backbones (docs/protocol.md §3, docs/method.md §1.2):

* ``vit``: supervised ViT-B/16, the ImageNet-21k-only augreg checkpoint of the InfLoRA-family code
  (``vit_base_patch16_224.augreg_in21k``); ``vit-in1k`` selects the 21k->1k fine-tuned one.
* ``dino``: ``vit_base_patch16_224.dino``.
* ``sam``: ``vit_base_patch16_224.sam_in1k``, the sharpness-aware-minimisation ViT (not Segment Anything).
* ``tiny-fmnist``: timm's ``test_vit`` (patch 8, 32 px) pretrained on Fashion-MNIST by ``janus.pretrain``
  and cached; the embedded default's backbone (real features, no download; built on first use).
* ``test``: timm's tiny ``test_vit`` (random init, patch 8) for unit tests.
* any other timm model name.

The model is built with ``num_classes=0`` so that ``model(x)`` returns the CLS token after the final norm.
Every parameter is frozen; methods unfreeze or inject what they train.
"""

from __future__ import annotations

import os
from pathlib import Path

import timm
from torch import nn

from janus.config import BackboneConfig
from janus.errors import UserError

BACKBONES = {
    "vit": "vit_base_patch16_224.augreg_in21k",
    "vit-in1k": "vit_base_patch16_224.augreg2_in21k_ft_in1k",
    "dino": "vit_base_patch16_224.dino",
    "sam": "vit_base_patch16_224.sam_in1k",
    "test": "test_vit",
}
# The tiny test model is never downloaded; patch 8 gives 16 tokens + CLS on 32x32 inputs, and a linear
# probe of its random-init CLS feature separates the digits far better than with patch 4 (72 % vs 67 %).
TEST_KWARGS = {"patch_size": 8}
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".npz")


def resolve_name(name: str) -> str:
    """Short name -> timm model name; a timm name passes through; anything else is a `UserError`."""
    from janus.pretrain import TINY_BACKBONES

    if name in TINY_BACKBONES:
        return TINY_BACKBONES[name].model
    if name in BACKBONES:
        return BACKBONES[name]
    if timm.is_model(name) or timm.list_models(name.split(".")[0]):
        return name
    raise UserError(f"unknown backbone {name!r}; use one of {', '.join(known_names())} or a timm model name "
                    "(see timm.list_models())")


def known_names() -> list[str]:
    from janus.pretrain import TINY_BACKBONES

    return [*BACKBONES, *TINY_BACKBONES]


def build_backbone(cfg: BackboneConfig, img_size: int | None = None) -> nn.Module:
    """Create the frozen timm ViT for `cfg`; `img_size` overrides the model's input size when given."""
    from janus.pretrain import TINY_BACKBONES

    if cfg.name in TINY_BACKBONES and not cfg.weights:
        return build_tiny_pretrained(cfg, img_size)
    model_name = resolve_name(cfg.name)
    kwargs = {"num_classes": 0, "drop_path_rate": cfg.drop_path_rate}
    if img_size is not None:
        kwargs["img_size"] = img_size
    if cfg.name == "test":
        kwargs.update(TEST_KWARGS)
    if cfg.weights:
        model = _create_from_file(model_name, cfg.weights, kwargs)
    elif cfg.pretrained and cfg.name != "test":
        model = _create_from_hub(model_name, kwargs)
    else:
        model = timm.create_model(model_name, pretrained=False, **kwargs)
    return freeze(model)


def build_tiny_pretrained(cfg: BackboneConfig, img_size: int | None) -> nn.Module:
    """A `janus.pretrain` backbone from its cache (built there first when missing or unreadable), loaded
    through timm's local-file path with the recipe's architecture and normalisation."""
    from janus.pretrain import TINY_BACKBONES, ensure_backbone

    recipe = TINY_BACKBONES[cfg.name]
    if img_size not in (None, recipe.image_size):
        raise UserError(f"backbone {cfg.name!r} was pretrained at {recipe.image_size} px; set "
                        f"data.image_size={recipe.image_size}")
    kwargs = {**recipe.timm_kwargs(), "num_classes": 0, "drop_path_rate": cfg.drop_path_rate}
    if not cfg.pretrained:
        return freeze(timm.create_model(recipe.model, pretrained=False, **kwargs))
    overlay = {**weights_overlay(str(ensure_backbone(cfg.name))), "mean": (recipe.mean,) * 3,
               "std": (recipe.std,) * 3, "num_classes": 0}
    return freeze(timm.create_model(recipe.model, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs))


def _create_from_file(model_name: str, path: str, kwargs: dict) -> nn.Module:
    """timm model with a local checkpoint; a file of another architecture or a damaged one is one line."""
    from safetensors import SafetensorError

    overlay = weights_overlay(path)
    try:
        return timm.create_model(model_name, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
    except (RuntimeError, KeyError, ValueError, OSError, SafetensorError) as error:
        problem = str(error).strip().splitlines()
        first = next((line.strip() for line in problem if "size mismatch" in line or "Missing key" in line),
                     problem[0] if problem else type(error).__name__)
        raise UserError(f"weights file {path!r} does not fit {model_name!r}: {first[:300]}; the file seems to hold "
                        f"{describe_checkpoint(path)}; pass that architecture as --backbone or another file") from None


def describe_checkpoint(path: str) -> str:
    """'a ViT with width 768, patch 16, 12 blocks' read from a checkpoint's tensors, or why it cannot be read."""
    import re

    import torch

    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(path)
        elif path.endswith(".npz"):
            return "an original-JAX .npz checkpoint"
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else {}
    except Exception as error:  # noqa: BLE001  (any failure to read means "damaged or not a checkpoint")
        return f"nothing readable ({type(error).__name__}: a damaged or non-checkpoint file)"
    patch = state.get("patch_embed.proj.weight")
    if patch is None:
        return f"no ViT patch embedding ({len(state)} tensors)"
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))}
    return f"a ViT with width {patch.shape[0]}, patch {patch.shape[-1]}, {len(blocks)} blocks"


def weights_overlay(path: str) -> dict:
    """timm `pretrained_cfg_overlay` that loads a local checkpoint; .npz uses timm's original-JAX loader."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"weights file {str(file)!r} does not exist; pass an existing checkpoint with "
                        f"--weights (one of {', '.join(WEIGHT_SUFFIXES)})")
    if file.suffix not in WEIGHT_SUFFIXES:
        raise UserError(f"weights file {str(file)!r} has an unsupported suffix; use one of "
                        f"{', '.join(WEIGHT_SUFFIXES)}")
    return {"file": str(file), "custom_load": file.suffix == ".npz"}


def hub_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _create_from_hub(model_name: str, kwargs: dict) -> nn.Module:
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    try:
        return timm.create_model(model_name, pretrained=True, **kwargs)
    except Exception as error:  # timm/hf raise several types for a missing file; all mean "no weights"
        how = "hub look-ups are off (HF_HUB_OFFLINE=1)" if offline else f"download failed ({error})"
        raise UserError(
            f"no pretrained weights for {model_name!r}: {how} and they are not in the cache {hub_cache_dir()}; "
            f"pass a local checkpoint with --weights PATH (backbone.weights), or set HF_HUB_OFFLINE=0 "
            f"on a machine with internet") from error


def freeze(model: nn.Module) -> nn.Module:
    for param in model.parameters():
        param.requires_grad_(False)
    return model


def data_mean_std(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The backbone's own normalisation (used when data.normalization == 'backbone')."""
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    return tuple(cfg.get("mean", (0.5, 0.5, 0.5))), tuple(cfg.get("std", (0.5, 0.5, 0.5)))


def attention_blocks(model: nn.Module) -> list[nn.Module]:
    """The transformer blocks of a timm ViT, in order."""
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        raise UserError(f"backbone {type(model).__name__} has no `blocks`; use a timm VisionTransformer")
    return list(blocks)


def feature_dim(model: nn.Module) -> int:
    return int(model.num_features)


