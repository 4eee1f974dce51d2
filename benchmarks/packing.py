"""Packing trials on one device: aggregate training throughput of 1, 2 and 4 concurrent trials vs 1.

A study with `--gpus-per-trial 0.5` (or 0.25) runs 2 (or 4) trials on one GPU at once; whether that pays
depends on how busy one trial keeps the GPU. This benchmark answers it for the device at hand: it starts N
worker processes at once (as Ray would: one process per trial, each with its share of the CPUs as threads
and `torch.cuda.set_per_process_memory_fraction(1/N)` on a GPU), lets each build the same training step
(method, backbone, batch as in `step_overhead.py`), waits on a barrier until all are warm, then times
`--steps` steps in every worker and reports

    aggregate images/s = Σ images / (last worker's end − first worker's start)

and its ratio to N = 1. On a CPU the "device" is the cores, split between the workers.

    python benchmarks/packing.py                                     # test backbone, 1/2/4 trials, CPU
    python benchmarks/packing.py --backbone vit --batch 128 --precision bf16 --device cuda --trials 1,2,4

Random weights are fine for speed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).parent))
from step_overhead import build  # noqa: E402

from janus.offline import entry_point_policy  # noqa: E402
from janus.runtime import device_description, resolve_device  # noqa: E402
from janus.training import train_step  # noqa: E402


def worker(rank: int, args, trials: int, barrier, results) -> None:
    """One trial's process: build, warm up, wait for the others, time `args.steps` steps."""
    device = resolve_device(args.device)
    torch.set_num_threads(max(1, args.cpus // trials))
    if device.type == "cuda" and trials > 1:
        torch.cuda.set_per_process_memory_fraction(1.0 / trials, device)
    torch.manual_seed(rank)
    method, task, optimizer, _, size = build(args.method, args.backbone, args, device)
    x = torch.rand(args.batch, 3, size, size, device=device)
    y = torch.randint(args.classes, 2 * args.classes, (args.batch,), device=device)
    for _ in range(args.warmup):
        train_step(method, optimizer, task, x, y, args.precision)
    synchronize(device)
    barrier.wait()
    start = time.time()
    for _ in range(args.steps):
        train_step(method, optimizer, task, x, y, args.precision)
    synchronize(device)
    results[rank] = (start, time.time(), args.steps * args.batch)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_packed(args, trials: int) -> dict:
    """Start `trials` workers at once; aggregate throughput over the window in which they ran."""
    context = mp.get_context("spawn")
    barrier, manager = context.Barrier(trials), context.Manager()
    results = manager.dict()
    processes = [context.Process(target=worker, args=(rank, args, trials, barrier, results)) for rank in range(trials)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed or len(results) != trials:
        raise SystemExit(f"packing benchmark: {len(failed)} of {trials} workers failed (exit codes {failed})")
    runs = list(results.values())
    window = max(end for _, end, _ in runs) - min(start for start, _, _ in runs)
    images = sum(n for _, _, n in runs)
    per_trial = [n / (end - start) for start, end, n in runs]
    manager.shutdown()
    return {"trials": trials, "images_per_s": images / window, "slowest_trial_images_per_s": min(per_trial)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", default="1,2,4", help="comma list of concurrent trial counts (default: %(default)s)")
    parser.add_argument("--method", default="janus", help="method every trial trains (default: %(default)s)")
    parser.add_argument("--backbone", default="test", help="test (tiny) or vit (ViT-B/16) (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per trial (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--basis-fraction", type=float, default=0.3)
    parser.add_argument("--precision", default="auto", help="auto (bf16 on CUDA), fp32 or bf16")
    parser.add_argument("--oe-precision", default="float64")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="CPUs shared by the workers")
    args = parser.parse_args(argv)
    entry_point_policy(argv if argv is not None else sys.argv[1:])
    counts = [int(n) for n in args.trials.split(",")]
    if any(n < 1 for n in counts):
        raise SystemExit(f"--trials takes positive counts, got {args.trials}; e.g. --trials 1,2,4")
    device = resolve_device(args.device)
    print(f"device {device_description(device)}, {args.method} on {args.backbone}, batch {args.batch}, "
          f"precision {args.precision}, {args.steps} timed steps per trial, {args.cpus} CPUs shared")
    print(f"{'trials':>6} {'images/s':>10} {'vs 1 trial':>11} {'slowest trial img/s':>20}")
    single = None
    for trials in counts:
        r = run_packed(args, trials)
        single = single or (r["images_per_s"] if trials == 1 else None)
        ratio = f"{r['images_per_s'] / single:11.2f}" if single else f"{'-':>11}"
        print(f"{trials:>6} {r['images_per_s']:10.1f} {ratio} {r['slowest_trial_images_per_s']:20.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
