"""Time per task of each registered method, relative to `seq-lora` on the same backbone.

    python benchmarks/task_time.py                                    # every method, test backbone, CPU-sized
    python benchmarks/task_time.py --methods seq-lora,inflora,lora-gpm,lora-drs,sd-lora \\
        --backbone vit --image-size 224 --batch 8 --steps 2          # ViT-B/16, random init (no download)

What is timed is what runs: each method goes through `janus.run_experiment`, and a task's time is the
protocol's own `task_wall_s` (training plus `after_task`, i.e. every extra pass a method makes before or
after training; evaluation is excluded). All methods run in this one process, after one untimed warm-up run.

The synthetic data set is sized so that one epoch is exactly `--steps` batches per task; a method's extra
passes over the task's data therefore weigh as they would against `--epochs` epochs of a real run. Real
recipes train 5-50 epochs, so with the default of one epoch the ratios are upper bounds for methods whose
overhead is per task (InfLoRA's two passes, LoRA-DRS's subtraction and prototype passes, GPM's pass), and
fair for per-step overheads (update rewriting, GR).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import torch

from janus.errors import UserError

CLASSES_PER_TASK = 2
TEST_PER_CLASS = 2  # evaluation is not timed; keep it short


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default="", help="comma-separated; default: every registered method")
    parser.add_argument("--backbone", default="test", help="test | vit | dino | sam | timm name; random init")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per epoch (= batches per task)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1, help="runs per method; the median is reported")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override, e.g. --set lora.rank=10 (repeatable)")
    return parser.parse_args(argv)


def benchmark_config(args: argparse.Namespace, method: str) -> dict:
    per_class = math.ceil(args.steps * args.batch / CLASSES_PER_TASK)
    config = {
        "backbone.name": args.backbone,
        "backbone.pretrained": False,
        "data.dataset": "synthetic",
        "data.tasks": args.tasks,
        "data.synthetic_classes": CLASSES_PER_TASK * args.tasks,
        "data.synthetic_train_per_class": per_class,
        "data.synthetic_test_per_class": TEST_PER_CLASS,
        "data.val_fraction": 0.0,
        "data.image_size": args.image_size,
        "optim.batch_size": args.batch,
        "optim.eval_batch_size": args.batch,
        "optim.max_steps_per_epoch": args.steps,
        "optim.epochs": args.epochs,
        "optim.device": args.device,
        "method.name": method,
    }
    for item in args.set:
        key, _, value = item.partition("=")
        config[key] = value
    return config


def seconds_per_task(args: argparse.Namespace, method: str) -> float:
    """Mean `task_wall_s` of one full protocol run."""
    from janus import run_experiment

    return statistics.mean(run_experiment(benchmark_config(args, method)).task_wall_s)


def time_methods(args: argparse.Namespace, methods: list[str]) -> dict[str, float | str]:
    """{method: median seconds per task over the repeats, or the error when the method cannot run here}.

    Repeats go round-robin over the methods, so a change of machine load hits every method alike.
    """
    samples: dict[str, list[float]] = {method: [] for method in methods}
    failures: dict[str, str] = {}
    for repeat in range(args.repeats):
        for method in (m for m in methods if m not in failures):
            start = time.perf_counter()
            try:
                samples[method].append(seconds_per_task(args, method))
            except (UserError, RuntimeError, ValueError) as error:  # a method that cannot run here must
                # not hide the others' timings (e.g. one that needs real weights or another backbone)
                failures[method] = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:80]}"
            print(f"  {method} (run {repeat + 1}): {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return {method: failures.get(method) or statistics.median(samples[method]) for method in methods}


def format_table(times: dict[str, float | str], reference: str = "seq-lora") -> str:
    base = times.get(reference)
    rows = ["| method | s / task | vs seq-lora |", "|---|---:|---:|"]
    for method, value in times.items():
        if isinstance(value, str):
            rows.append(f"| {method} | {value} | |")
            continue
        ratio = f"{value / base:.2f}" if isinstance(base, float) and base > 0 else "n/a"
        rows.append(f"| {method} | {value:.3f} | {ratio} |")
    return "\n".join(rows)


def main(argv=None) -> None:
    args = parse_args(argv)
    from janus.methods import METHODS

    methods = [m for m in args.methods.split(",") if m] or sorted(METHODS)
    methods = ["seq-lora"] + [m for m in methods if m != "seq-lora"]
    print(f"backbone={args.backbone} image={args.image_size} batch={args.batch} steps/epoch={args.steps} "
          f"epochs={args.epochs} tasks={args.tasks} repeats={args.repeats} threads={torch.get_num_threads()}",
          file=sys.stderr)
    seconds_per_task(args, "seq-lora")  # warm-up: lazy initialisation, allocator, caches
    print(format_table(time_methods(args, methods)))


if __name__ == "__main__":
    main()
