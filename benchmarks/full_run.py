"""An ImageNet-R-shaped run, end to end: how long a full Janus-LoRA (and seq-lora) study trial takes here.

Writes a synthetic data set in ImageNet-R's on-disk format (`<root>/imagenet-r/<wnid>/*.jpg`, 200 classes,
JPEGs of ImageNet-R's sizes, 120 per class by default: 24,000 train / 6,000 test after the 80/20 split),
then runs the whole sequential protocol (T = 10) for each method and prints images/s, seconds per task,
the total, and on CUDA an estimated MFU against the device's bf16 peak (ViT-B/16: 17.6 GFLOPs per
224-px image forward, ×3 for a LoRA training step; evaluation counted as forward only).

    python benchmarks/full_run.py --device cuda --epochs 50                 # the paper's ImageNet-R epochs
    python benchmarks/full_run.py --per-class 10 --backbone test --image-size 32 --epochs 1   # CPU smoke size

Random weights (`backbone.pretrained=false`): this measures time, not accuracy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FORWARD_GFLOPS = {"vit": 17.6, "vit-in1k": 17.6, "dino": 17.6, "sam": 17.6}   # ViT-B/16 at 224 px
BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}  # dense, SXM where it applies


def write_imagenet_r_like(root: Path, classes: int, per_class: int, seed: int = 0) -> int:
    """JPEGs with ImageNet-R's typical sizes (short side 256-512 px) under root/imagenet-r/<wnid>/."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(classes):
        folder = root / "imagenet-r" / f"n{c:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = (int(v) for v in rng.integers(256, 513, size=2))
            pixels = rng.integers(0, 256, size=(h // 8, w // 8, 3), dtype=np.uint8)  # smooth-ish content
            Image.fromarray(pixels).resize((w, h)).save(folder / f"{i:04d}.jpg", quality=90)
    return classes * per_class


def peak_tflops(device: str) -> float | None:
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)


def run(method: str, args, root: Path) -> dict:
    from janus import run_experiment

    config = {"backbone.name": args.backbone, "backbone.pretrained": False, "data.dataset": "imagenet-r",
              "data.root": str(root), "data.tasks": 10, "data.image_size": args.image_size,
              "optim.epochs": args.epochs, "optim.batch_size": args.batch, "optim.device": args.device,
              "optim.precision": args.precision, "method.name": method, "seed": 0}
    tasks = []
    start = time.perf_counter()
    result = run_experiment(config, on_task_end=lambda report: tasks.append(time.perf_counter()))
    total = time.perf_counter() - start
    train_images = sum(result.n_test) * 4          # the 80/20 split: 4 train images per test image
    return {"method": method, "total_s": total, "train_s": sum(result.task_wall_s),
            "per_task_s": float(np.mean(np.diff([start, *tasks]))),
            "images_per_s": train_images * args.epochs / sum(result.task_wall_s),
            "eval_images": sum(result.n_test) * (result.acc_matrix.shape[0] + 1) / 2,
            "train_images": train_images, "device": result.device}


def mfu(row: dict, args) -> str:
    peak, gflops = peak_tflops(args.device), FORWARD_GFLOPS.get(args.backbone)
    if peak is None or gflops is None or args.image_size != 224:
        return "n/a"
    flops = gflops * 1e9 * (3 * row["train_images"] * args.epochs + row["eval_images"] * 2)  # test + val
    return f"{100 * flops / row['total_s'] / (peak * 1e12):.1f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="janus,seq-lora")
    parser.add_argument("--backbone", default="vit")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--per-class", type=int, default=150, help="images per class (150: 24,000 train)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--data", default=None, help="reuse a folder written before (default: a temporary one)")
    args = parser.parse_args(argv)
    from janus.offline import entry_point_policy

    entry_point_policy(argv or [])
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.data or scratch)
        if not (root / "imagenet-r").is_dir():
            started = time.perf_counter()
            count = write_imagenet_r_like(root, 200, args.per_class)
            print(f"wrote {count} JPEGs in {time.perf_counter() - started:.0f}s to {root}")
        rows = [run(m, args, root) for m in args.methods.split(",")]
    print(f"ImageNet-R-shaped run: T=10, {rows[0]['train_images']} train images, {args.epochs} epoch(s), "
          f"{args.backbone} at {args.image_size} px, batch {args.batch}, device {rows[0]['device']}")
    print(f"{'method':<10} {'total s':>9} {'s/task':>8} {'train img/s':>12} {'MFU':>6}")
    for row in rows:
        print(f"{row['method']:<10} {row['total_s']:9.1f} {row['per_task_s']:8.1f} {row['images_per_s']:12.1f} "
              f"{mfu(row, args):>6}")
    if len(rows) > 1:
        print(f"ratio {rows[0]['method']}/{rows[1]['method']} total: {rows[0]['total_s'] / rows[1]['total_s']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
