"""An ImageNet-R-shaped run, end to end: how long a full Janus-LoRA (and seq-lora) study trial takes here.

Writes a synthetic data set in ImageNet-R's on-disk format (`<root>/imagenet-r/<wnid>/*.jpg`, 200 classes,
JPEGs of ImageNet-R's sizes, 150 per class by default: 24,000 train / 6,000 test after the 80/20 split),
then runs the whole sequential protocol (T = 10) for each method and prints images/s, seconds per task,
the total, and on CUDA an estimated MFU against the device's bf16 peak (ViT-B/16: 17.6 GFLOPs per
224-px image forward, ×3 for a LoRA training step; evaluation counted as forward only).

    python benchmarks/full_run.py --device cuda --epochs 50                 # the paper's ImageNet-R epochs
    python benchmarks/full_run.py --per-class 10 --backbone test --image-size 32 --epochs 1   # CPU smoke size
    python benchmarks/full_run.py --device cuda --cache on --augment-on device --eval-batch 1024   # GPU data path

The data-path options map to config keys (README "GPU data path"): --cache (data.cache; the cache is built
once before the timed runs, under the data folder unless --cache-dir), --augment-on (data.augment_on),
--uint8-transfer (data.uint8_transfer), --channels-last, --compile (optim.*), --eval-batch
(optim.eval_batch_size), --workers (optim.num_workers).

The last column estimates the run at --project-epochs (default 50, the paper's ImageNet-R recipe) from the
measured one: the total plus (project − measured epochs) × the mean training time of one epoch of all tasks.
Evaluation and end-of-task work do not grow with the epochs, so they are counted once.

Random weights (`backbone.pretrained=false`): this measures time, not accuracy.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FORWARD_GFLOPS = {"vit": 17.6, "vit-in1k": 17.6, "dino": 17.6, "sam": 17.6}   # ViT-B/16 at 224 px
BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}  # dense, SXM where it applies


def peak_tflops(device: str) -> float | None:
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)


def base_config(args, root: Path) -> dict:
    return {"backbone.name": args.backbone, "backbone.pretrained": False, "data.dataset": "imagenet-r",
            "data.root": str(root), "data.tasks": 10, "data.image_size": args.image_size,
            "data.cache": args.cache, "data.cache_dir": args.cache_dir or str(root / "decoded-cache"),
            "data.augment_on": args.augment_on, "data.uint8_transfer": args.uint8_transfer,
            "optim.epochs": args.epochs, "optim.batch_size": args.batch, "optim.eval_batch_size": args.eval_batch,
            "optim.num_workers": args.workers, "optim.channels_last": args.channels_last,
            "optim.compile": args.compile, "optim.device": args.device, "optim.precision": args.precision,
            "seed": 0}


def build_cache(args, root: Path) -> float:
    """Seconds to build (or find) the decoded-image cache, outside the timed runs."""
    from janus.config import ExperimentConfig
    from janus.data import build_scenario
    from janus.runtime import num_workers, resolve_device

    cfg = ExperimentConfig.from_dict(base_config(args, root))
    device = resolve_device(cfg.optim.device)
    started = time.perf_counter()
    build_scenario(cfg.data, cfg.seed, device="cpu", workers=num_workers(cfg.optim.num_workers, device))
    return time.perf_counter() - started


def run(method: str, args, root: Path) -> dict:
    from janus import run_experiment

    config = {**base_config(args, root), "method.name": method}
    tasks, epochs = [], []
    start = time.perf_counter()
    result = run_experiment(config, on_task_end=lambda report: tasks.append(time.perf_counter()),
                            on_epoch_end=lambda event: epochs.append(event.seconds))
    total = time.perf_counter() - start
    epoch_s = sum(epochs) / args.epochs                 # one epoch of every task, the rest is per-task work
    train_images = sum(result.n_test) * 4          # the 80/20 split: 4 train images per test image
    return {"method": method, "total_s": total, "train_s": sum(result.task_wall_s),
            "per_task_s": float(np.mean(np.diff([start, *tasks]))),
            "images_per_s": train_images * args.epochs / sum(result.task_wall_s),
            "eval_images": sum(result.n_test) * (result.acc_matrix.shape[0] + 1) / 2,
            "train_images": train_images, "device": result.device,
            "projected_s": total + epoch_s * (args.project_epochs - args.epochs)}


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
    parser.add_argument("--project-epochs", type=int, default=50,
                        help="also print the total estimated at this many epochs (default: ImageNet-R's %(default)s)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--data", default=None, help="reuse a folder written before (default: a temporary one)")
    parser.add_argument("--cache", choices=("off", "on"), default="off", help="data.cache")
    parser.add_argument("--cache-dir", default=None, help="data.cache_dir (default: <data>/decoded-cache)")
    parser.add_argument("--augment-on", choices=("loader", "device"), default="loader", help="data.augment_on")
    parser.add_argument("--uint8-transfer", choices=("auto", "on", "off"), default="auto",
                        help="data.uint8_transfer")
    parser.add_argument("--channels-last", action="store_true", help="optim.channels_last")
    parser.add_argument("--compile", action="store_true", help="optim.compile")
    parser.add_argument("--eval-batch", type=int, default=256, help="optim.eval_batch_size")
    parser.add_argument("--workers", type=int, default=-1, help="optim.num_workers (-1: from the trial's CPUs)")
    args = parser.parse_args(argv)
    from janus.offline import entry_point_policy
    from janus.testing import write_imagenet_r_tree

    entry_point_policy(argv or [])
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.data or scratch)
        if not (root / "imagenet-r").is_dir():
            started = time.perf_counter()
            count = write_imagenet_r_tree(root, 200, args.per_class, sides=(256, 513), blocks=8,  # ImageNet-R's sizes
                                          workers=os.cpu_count() or 1)
            print(f"wrote {count} JPEGs in {time.perf_counter() - started:.0f}s to {root}")
        if args.cache == "on":
            print(f"decoded-image cache ready in {build_cache(args, root):.1f}s")
        rows = [run(m, args, root) for m in args.methods.split(",")]
    print(f"ImageNet-R-shaped run: T=10, {rows[0]['train_images']} train images, {args.epochs} epoch(s), "
          f"{args.backbone} at {args.image_size} px, batch {args.batch}, device {rows[0]['device']}")
    print(f"data path: cache {args.cache}, augment on {args.augment_on}, uint8 transfer {args.uint8_transfer}, "
          f"channels-last {args.channels_last}, compile {args.compile}, eval batch {args.eval_batch}")
    projected = f"est. s @{args.project_epochs} ep"
    print(f"{'method':<10} {'total s':>9} {'s/task':>8} {'train img/s':>12} {'MFU':>6} {projected:>15}")
    for row in rows:
        print(f"{row['method']:<10} {row['total_s']:9.1f} {row['per_task_s']:8.1f} {row['images_per_s']:12.1f} "
              f"{mfu(row, args):>6} {row['projected_s']:15.1f}")
    if len(rows) > 1:
        print(f"ratio {rows[0]['method']}/{rows[1]['method']} total: {rows[0]['total_s'] / rows[1]['total_s']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
