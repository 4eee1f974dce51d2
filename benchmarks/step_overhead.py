"""Training-step cost of Janus-LoRA (OE + GR + DML) relative to plain LoRA (`seq-lora`).

Both methods are built on the same backbone and batch, in one process, set up as on a later task (task 1 of
2: protected bases and old prototypes present, so GR and DML are active, and OE hooks record), and timed
alternately step by step (forward, loss, backward, after_backward, Adam step, after_step); the median of
many steps is reported. Then the end-of-task OE update (one eigendecomposition per block) is timed and put
next to one epoch of training at the same step time.

    python benchmarks/step_overhead.py                                  # test backbone and ViT-B/16
    python benchmarks/step_overhead.py --backbones vit --batch 32 --steps 30 --device cuda
    python benchmarks/step_overhead.py --epoch-images 2400              # ImageNet-R T=10: 2400 images/task
    python benchmarks/step_overhead.py --backbones vit --batch 128 --precision bf16 --oe-precision float32

Random weights are fine for speed (`backbone.pretrained=false`).
"""

from __future__ import annotations

import argparse
import copy
import sys
import statistics
import time
from functools import partial

import torch

from janus.config import ExperimentConfig
from janus.experiment import build_experiment
from janus.methods import resolve_config
from janus.offline import entry_point_policy
from janus.runtime import device_description, resolve_device
from janus.subspace import DualBasis, energy_threshold
from janus.training import train_step

IMAGE_SIZE = {"test": 32}


def build(name: str, backbone_name: str, args, device) -> tuple:
    size = IMAGE_SIZE.get(backbone_name, 224)
    janus_only = {"method.oe_precision": args.oe_precision} if name == "janus" else {}
    cfg = resolve_config(ExperimentConfig.from_dict({**janus_only,
        "backbone.name": backbone_name, "backbone.pretrained": False, "method.name": name, "lora.rank": args.rank,
        "optim.precision": args.precision, "optim.epochs": 2, "seed": 0,
        # a 2-task scenario of random images: the step is timed on its own batch below
        "data.dataset": "synthetic", "data.tasks": 2, "data.synthetic_classes": 2 * args.classes,
        "data.synthetic_train_per_class": 2, "data.synthetic_test_per_class": 1, "data.image_size": size}))
    experiment = build_experiment(cfg, device)
    method = experiment.method
    method.heads.add_head(args.classes, device)          # task 0's head
    if name == "janus":
        protect_like_after_task_0(method, args.basis_fraction, args.classes, device)
    task = experiment.task_info(experiment.scenario.tasks[1])
    method.before_task(task)
    method.before_epoch(task, 0)
    optimizer = torch.optim.Adam([p for g in method.param_groups() for p in g["params"]], lr=1e-4)
    return method, task, optimizer, cfg, size


def protect_like_after_task_0(method, fraction: float, classes: int, device) -> None:
    """Random orthonormal bases of `fraction`·d columns per block and one prototype per old class."""
    for site, module in method.lora_modules.items():
        basis = torch.linalg.qr(torch.randn(module.d_in, max(1, int(fraction * module.d_in)), device=device))[0]
        method.bases.bases[site.block] = DualBasis(basis)
    for s in method.slices:
        torch.nn.init.normal_(s.pair.B, std=1e-3)
    method.bank.add(list(range(classes)), torch.randn(classes, method.context.feature_dim, device=device))


def timed(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def compare(backbone_name: str, args, device) -> dict:
    runs = {name: build(name, backbone_name, args, device) for name in ("seq-lora", "janus")}
    size = runs["janus"][4]
    x = torch.rand(args.batch, 3, size, size, device=device)
    y = torch.randint(args.classes, 2 * args.classes, (args.batch,), device=device)
    times = {name: [] for name in runs}
    for index in range(args.warmup + args.steps):
        for name, (method, task, optimizer, cfg, _) in runs.items():
            seconds = timed(partial(train_step, method, optimizer, task, x, y, args.precision), device)
            if index >= args.warmup:
                times[name].append(seconds)
    medians = {name: statistics.median(values) for name, values in times.items()}
    oe_seconds = time_oe_update(runs["janus"][0], device)
    epoch_seconds = medians["janus"] * -(-args.epoch_images // args.batch)
    return {"backbone": backbone_name, "lora_ms": 1e3 * medians["seq-lora"], "janus_ms": 1e3 * medians["janus"],
            "ratio": medians["janus"] / medians["seq-lora"], "oe_update_s": oe_seconds,
            "oe_vs_epoch": oe_seconds / epoch_seconds}


def time_oe_update(method, device) -> float:
    """The end-of-task OE update (on the training device, in method.oe_precision) on the statistics the timed
    steps collected."""
    moments = {name: acc.mean() for name, acc in method.recorder.accumulators.items()}
    eps = energy_threshold(1, 2, method.options.threshold, method.options.threshold_end)
    bases = copy.deepcopy(method.bases)
    return timed(lambda: bases.update(moments, eps), device)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", default="test,vit", help="comma list (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=8, help="images per step (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per method (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--classes", type=int, default=20, help="classes per task (default: %(default)s)")
    parser.add_argument("--basis-fraction", type=float, default=0.3, help="protected share of each block's input")
    parser.add_argument("--epoch-images", type=int, default=2400, help="images per task for the OE/epoch ratio")
    parser.add_argument("--precision", default="auto", help="auto (bf16 on CUDA), fp32 or bf16")
    parser.add_argument("--oe-precision", default="float64", help="float64 or float32 task-end eigendecomposition")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    entry_point_policy(argv if argv is not None else sys.argv[1:])
    device = resolve_device(args.device)
    print(f"device {device_description(device)}, batch {args.batch}, precision {args.precision}, rank {args.rank}, "
          f"median of {args.steps} steps, protected fraction {args.basis_fraction}, OE eigh {args.oe_precision}")
    print(f"{'backbone':10} {'seq-lora ms':>12} {'janus ms':>10} {'ratio':>7} {'OE update s':>12} {'OE/epoch':>9}")
    for name in args.backbones.split(","):
        r = compare(name, args, device)
        print(f"{r['backbone']:10} {r['lora_ms']:12.1f} {r['janus_ms']:10.1f} {r['ratio']:7.3f} "
              f"{r['oe_update_s']:12.3f} {r['oe_vs_epoch']:9.4f}", flush=True)


if __name__ == "__main__":
    main()
