"""Supervised pretraining of a tiny timm ViT, cached: an offline backbone with real features.

The paper's backbones (ViT-B/16 supervised, DINO, SAM) need downloaded weights. On a machine without them the
only other choice used to be a random-init ViT, whose CLS feature is nearly constant, so no continual-learning
method can show anything on it. This module builds the next best thing from data that ships with Debian:
timm's `test_vit` trained with plain supervised AdamW on Fashion-MNIST, whose 10 clothing classes are disjoint
from the digits of the embedded continual scenario (the backbone never saw a digit).

    python -m janus.pretrain                     # builds (or finds) the `tiny-fmnist` backbone
    python -m janus.pretrain --force             # rebuild even when cached

The weights go to `<cache>/backbones/<name>-<recipe hash>.safetensors`, beside a JSON with the recipe, the
data, the test accuracy, the wall time and the package versions (`<cache>` is $JANUS_CACHE, else
$XDG_CACHE_HOME/janus, else ~/.cache/janus). A run with the same recipe and seed reproduces the same weights
on the same machine and thread count. `janus.backbone` resolves the name `tiny-fmnist` to that file and
builds it on first use.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from janus.data.roots import cache_dir
from janus.errors import UserError
from janus.progress import ConsoleBar, bar, clock

FORMAT_VERSION = 1  # bump when the meaning of a recipe field changes, so old cache files are not reused


@dataclass(frozen=True)
class PretrainRecipe:
    """Everything that decides the weights; its hash names the cache file."""

    model: str = "test_vit"
    model_kwargs: dict = field(default_factory=lambda: {"patch_size": 8})
    dataset: str = "fashion-mnist"
    image_size: int = 32
    mean: float = 0.2860          # Fashion-MNIST train-set pixel mean and std, the backbone's normalisation
    std: float = 0.3530
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 100
    crop_padding: int = 2         # random translation by up to 2 px: light augmentation, labels intact
    flip: bool = True             # clothes are left-right symmetric classes
    seed: int = 0

    def digest(self) -> str:
        payload = json.dumps({"format": FORMAT_VERSION, **dataclasses.asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def timm_kwargs(self) -> dict:
        return {**self.model_kwargs, "img_size": self.image_size}


# Named pretrained tiny backbones (`--backbone tiny-fmnist`). The recipe was chosen for feature quality within
# about 3 minutes on 2 CPU cores (README, "Offline backbone"); change it and the cache key changes with it.
TINY_BACKBONES: dict[str, PretrainRecipe] = {"tiny-fmnist": PretrainRecipe()}


@dataclass
class PretrainResult:
    state_dict: dict[str, torch.Tensor]
    test_accuracy: float          # percent, on the data set's own test split
    wall_s: float


def cached_weights_path(name: str, recipe: PretrainRecipe, root: Path | None = None) -> Path:
    return (root or cache_dir()) / "backbones" / f"{name}-{recipe.digest()}.safetensors"


# CPU reductions depend on the thread count, so pretraining always runs with this many threads: the cached
# backbone is then the same whether it was first built by `python -m janus` (all cores) or inside a one-CPU
# Ray trial. A cache built with another count is rebuilt (cache_problem).
PRETRAIN_THREADS = 2


def pretrain(recipe: PretrainRecipe, data_root: str | None = None,
             progress: Callable[[str], None] | None = print) -> PretrainResult:
    """Train `recipe.model` on the recipe's data set; deterministic for `recipe.seed` (on one platform)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(PRETRAIN_THREADS)
    try:
        return _pretrain(recipe, data_root, progress)
    finally:
        torch.set_num_threads(previous)


def _pretrain(recipe: PretrainRecipe, data_root: str | None,
              progress: Callable[[str], None] | None) -> PretrainResult:
    import timm

    train_x, train_y, test_x, test_y = load_pretraining_data(recipe, data_root)
    torch.manual_seed(recipe.seed)
    model = timm.create_model(recipe.model, pretrained=False, num_classes=int(train_y.max()) + 1,
                              **recipe.timm_kwargs())
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    generator = torch.Generator().manual_seed(recipe.seed)
    start, model = time.perf_counter(), model.train()
    report_every = max(1, recipe.steps // 10)
    for step in range(recipe.steps):
        for group in optimizer.param_groups:
            group["lr"] = recipe.lr * lr_factor(step, recipe.steps, recipe.warmup_steps)
        index = torch.randint(len(train_y), (recipe.batch_size,), generator=generator)
        images = augment(train_x[index], recipe, generator)
        loss = F.cross_entropy(model(normalize(images, recipe)), train_y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress and ((step + 1) % report_every == 0 or step + 1 == recipe.steps):
            elapsed = time.perf_counter() - start
            eta = elapsed / (step + 1) * (recipe.steps - step - 1)
            progress(f"pretrain {recipe.model} on {recipe.dataset}: step {step + 1}/{recipe.steps} "
                     f"{bar((step + 1) / recipe.steps)} loss {loss.item():.3f}  {clock(elapsed)} ETA {clock(eta)}")
    accuracy = test_accuracy(model, test_x, test_y, recipe)
    wall = time.perf_counter() - start
    if progress:
        progress(f"pretrain done in {wall:.0f}s: {recipe.dataset} test accuracy {accuracy:.1f}%")
    model.reset_classifier(0)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    return PretrainResult(state, accuracy, wall)


def lr_factor(step: int, steps: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 0 (timm's usual short-schedule shape)."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def load_pretraining_data(recipe: PretrainRecipe, data_root: str | None):
    """(train images N×1×S×S in [0, 1], labels, test images, labels) at the recipe's image size."""
    if recipe.dataset != "fashion-mnist":
        raise UserError(f"pretraining data set {recipe.dataset!r} is not supported; use fashion-mnist")
    from janus.data.fashion_mnist import find_fashion_mnist_dir, load_fashion_mnist_arrays, resized
    from janus.data.roots import resolve_root

    arrays = load_fashion_mnist_arrays(find_fashion_mnist_dir(resolve_root(data_root)))
    train_x, train_y, test_x, test_y = arrays
    return (resized(train_x, recipe.image_size), torch.as_tensor(train_y, dtype=torch.long),
            resized(test_x, recipe.image_size), torch.as_tensor(test_y, dtype=torch.long))


def augment(images: torch.Tensor, recipe: PretrainRecipe, generator: torch.Generator) -> torch.Tensor:
    """Random translation (zero padding) and horizontal flip, drawn from `generator`."""
    pad, size = recipe.crop_padding, images.shape[-1]
    if pad:
        padded = F.pad(images, (pad, pad, pad, pad))
        dx, dy = (int(v) for v in torch.randint(2 * pad + 1, (2,), generator=generator))
        images = padded[..., dy:dy + size, dx:dx + size]
    if recipe.flip:
        flip = torch.rand(images.shape[0], generator=generator) < 0.5
        images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    return images


def normalize(images: torch.Tensor, recipe: PretrainRecipe) -> torch.Tensor:
    return ((images - recipe.mean) / recipe.std).expand(-1, 3, -1, -1)


@torch.no_grad()
def test_accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                  recipe: PretrainRecipe) -> float:
    model.eval()
    correct = sum(int((model(normalize(x, recipe)).argmax(1) == y).sum())
                  for x, y in zip(images.split(512), labels.split(512)))
    return 100.0 * correct / len(labels)


# ------------------------------------------------------------------------------------------------------------
# the cache


def ensure_backbone(name: str, data_root: str | None = None, build: bool = True, force: bool = False,
                    progress: Callable[[str], None] | None = print) -> Path:
    """The cached weights of the named tiny backbone, built first when missing, unreadable or `force`d."""
    recipe = TINY_BACKBONES[name]
    path = cached_weights_path(name, recipe)
    problem = None if force else cache_problem(path, recipe)
    if not force and problem is None:
        return path
    if not build:
        raise UserError(f"backbone {name!r} is not built yet ({problem}); run `python -m janus.pretrain "
                        f"--backbone {name}` once (about 3 minutes on 2 CPU cores)")
    if progress and problem and "missing" not in problem:
        progress(f"rebuilding backbone {name!r}: {problem}")
    elif progress:
        progress(f"building backbone {name!r} once (cached at {path})")
    result = pretrain(recipe, data_root, progress)
    write_cache(path, name, recipe, result)
    return path


def cache_problem(path: Path, recipe: PretrainRecipe) -> str | None:
    """None when `path` holds readable weights written for `recipe`; else why not."""
    meta = path.with_suffix(".json")
    if not path.is_file() or not meta.is_file():
        return f"missing {path}"
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        load_file(str(path))
        written = json.loads(meta.read_text())
        recorded = written["recipe"]
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as error:  # truncated or foreign
        return f"unreadable cache file {path} ({type(error).__name__})"
    if recorded != dataclasses.asdict(recipe):
        return f"cache file {path} was written for another recipe"
    if written.get("threads") != PRETRAIN_THREADS:
        return f"cache file {path} was built with {written.get('threads')} threads, not {PRETRAIN_THREADS}"
    return None


def write_cache(path: Path, name: str, recipe: PretrainRecipe, result: PretrainResult) -> None:
    """Weights and their JSON, each written to a temporary name and renamed (no half-written cache)."""
    from safetensors.torch import save_file

    from janus.runtime import package_versions

    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"name": name, "recipe": dataclasses.asdict(recipe), "digest": recipe.digest(),
            "data": {"dataset": recipe.dataset, "train": "official 60k train split",
                     "test": "official 10k test split"},
            "test_accuracy": round(result.test_accuracy, 2), "wall_s": round(result.wall_s, 1),
            "threads": PRETRAIN_THREADS, "versions": package_versions()}
    tmp_weights, tmp_meta = path.with_suffix(".safetensors.tmp"), path.with_suffix(".json.tmp")
    save_file(result.state_dict, str(tmp_weights))
    tmp_meta.write_text(json.dumps(meta, indent=2, sort_keys=True))
    tmp_weights.replace(path)
    tmp_meta.replace(path.with_suffix(".json"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m janus.pretrain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="tiny-fmnist", choices=sorted(TINY_BACKBONES))
    parser.add_argument("--data-root", default=None, help="folder holding fashion-mnist/ (default: $JANUS_DATA, "
                        "./data, then Debian's /usr/share/datasets)")
    parser.add_argument("--force", action="store_true", help="rebuild even when a cached copy exists")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args(argv)
    from janus.offline import apply_offline_defaults

    apply_offline_defaults()
    try:
        live = ConsoleBar(enabled=not args.quiet)   # a bar redrawn in place on a terminal, lines otherwise
        path = ensure_backbone(args.backbone, args.data_root, force=args.force,
                               progress=None if args.quiet else live.line)
        live.clear()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    meta = json.loads(path.with_suffix(".json").read_text())
    print(f"{args.backbone}: {path} ({meta['data']['dataset']} test accuracy {meta['test_accuracy']:.1f}%, "
          f"built in {meta['wall_s']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
