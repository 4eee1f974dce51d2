"""How good are the features of a pretrained tiny backbone? Pretraining time, its own test accuracy, and
frozen-feature probes on the digits scenario's data (which the backbone never saw).

    python benchmarks/backbone_quality.py                       # the `tiny-fmnist` recipe
    python benchmarks/backbone_quality.py --candidates          # the recipes compared when choosing it
    python benchmarks/backbone_quality.py --steps 500           # override the step count of every recipe

Per recipe it prints: wall time of pretraining, Fashion-MNIST test accuracy, and on digits (the same 80/20
split and 32 px resize as the continual scenario) a linear probe (logistic regression) and NME (nearest
normalised class mean) on the frozen CLS feature; the random-init backbone is the reference row.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import timm
import torch
import torch.nn.functional as F

from janus.data.digits import _digits_tensors
from janus.pretrain import TINY_BACKBONES, PretrainRecipe, normalize, pretrain

CANDIDATES = {
    "p8-d64x6 (test_vit)": PretrainRecipe(),
    "p8-d64x6 3000 steps": PretrainRecipe(steps=3000),
    "p4-d64x6 800 steps": PretrainRecipe(model_kwargs={"patch_size": 4}, steps=800),
    "p8-d128x6 1000 steps": PretrainRecipe(model_kwargs={"patch_size": 8, "embed_dim": 128, "num_heads": 4},
                                           steps=1000),
}


@torch.no_grad()
def features(model: torch.nn.Module, images: torch.Tensor, recipe: PretrainRecipe) -> np.ndarray:
    model.eval()
    return torch.cat([model(normalize(x, recipe)) for x in images.split(512)]).numpy()


def probes(model: torch.nn.Module, recipe: PretrainRecipe) -> tuple[float, float]:
    """(linear-probe accuracy, NME accuracy) in percent on digits' test split."""
    from sklearn.linear_model import LogisticRegression

    train_x, train_y, test_x, test_y = _digits_tensors(recipe.image_size)
    f_train, f_test = features(model, train_x, recipe), features(model, test_x, recipe)
    mean, std = f_train.mean(0), f_train.std(0) + 1e-6
    clf = LogisticRegression(max_iter=2000).fit((f_train - mean) / std, train_y)
    linear = 100.0 * clf.score((f_test - mean) / std, test_y)
    protos = F.normalize(torch.stack([torch.from_numpy(f_train[train_y == c]).mean(0) for c in range(10)]), dim=1)
    predicted = (F.normalize(torch.from_numpy(f_test), dim=1) @ protos.T).argmax(1).numpy()
    return linear, 100.0 * float((predicted == test_y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", action="store_true", help="compare the candidate recipes")
    parser.add_argument("--steps", type=int, default=None, help="override every recipe's step count")
    args = parser.parse_args()
    recipes = CANDIDATES if args.candidates else {"tiny-fmnist": TINY_BACKBONES["tiny-fmnist"]}
    if args.steps:
        recipes = {f"{k} @{args.steps}": dataclasses.replace(r, steps=args.steps) for k, r in recipes.items()}
    reference = PretrainRecipe()
    random_model = timm.create_model(reference.model, pretrained=False, num_classes=0, **reference.timm_kwargs())
    rows = [("random init (test_vit p8)", 0.0, float("nan"), *probes(random_model, reference))]
    for label, recipe in recipes.items():
        result = pretrain(recipe, progress=None)
        model = timm.create_model(recipe.model, pretrained=False, num_classes=0, **recipe.timm_kwargs())
        model.load_state_dict(result.state_dict)
        rows.append((label, result.wall_s, result.test_accuracy, *probes(model, recipe)))
        print(f"{label}: {result.wall_s:.0f}s", flush=True)
    print(f"\n{'recipe':28s} {'pretrain s':>10s} {'fmnist test':>11s} {'digits linear':>13s} {'digits NME':>10s}")
    for label, wall, acc, linear, nme in rows:
        print(f"{label:28s} {wall:10.0f} {acc:11.1f} {linear:13.1f} {nme:10.1f}")


if __name__ == "__main__":
    main()
