"""How the embedded default's shared training recipe was chosen: one grid over lr x epochs x batch, the same
for every default method, scored on the validation split (never the test split): the final accuracy over
all classes after the last task (val ACC, the tables' headline metric), with val_acc_all (the mean over the
accuracy curve, the searches' default objective) beside it.

    python benchmarks/embedded_recipe.py                 # the grid below, seed 0, 2 worker processes
    python benchmarks/embedded_recipe.py --seeds 2

Prints val ACC per method and configuration and the mean over methods (then the same for val_acc_all); the
configuration with the best mean val ACC is the one janus/recipes.py ships. Fine-tuning keeps its 10x lower
lr in every configuration.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

GRID = {"optim.lr": (3e-4, 1e-3, 3e-3), "optim.epochs": (5, 10), "optim.batch_size": (16, 32)}


def run_one(job: tuple[str, dict, int]) -> dict[str, float]:
    import torch

    from janus import run_experiment
    from janus.recipes import PER_METHOD, single_run

    torch.set_num_threads(1)
    method, shared, seed = job
    config = {**single_run(method), **shared, "seed": seed}
    if method in PER_METHOD and "optim.lr" in PER_METHOD[method]:
        config["optim.lr"] = shared["optim.lr"] / 10   # fine-tuning: the protocol's 10x lower lr
    metrics = run_experiment(config).metrics
    return {"val_acc": metrics["val_acc"], "val_acc_all": metrics["val_acc_all"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from janus.pretrain import ensure_backbone
    from janus.recipes import BACKBONE, METHODS

    ensure_backbone(BACKBONE)
    configs = [dict(zip(GRID, values)) for values in itertools.product(*GRID.values())]
    jobs = [(m, c, s) for c in configs for m in METHODS for s in range(args.seeds)]
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        scores = list(pool.map(run_one, jobs))
    for metric in ("val_acc", "val_acc_all"):
        table: dict[tuple, dict[str, list[float]]] = {}
        for (method, config, _), score in zip(jobs, scores):
            table.setdefault(tuple(config.values()), {}).setdefault(method, []).append(score[metric])
        print_table(metric, table, METHODS)
    print(f"\n{len(jobs)} runs in {time.perf_counter() - start:.0f}s")


def print_table(metric: str, table: dict[tuple, dict[str, list[float]]], methods: tuple[str, ...]) -> None:
    print(f"\n{metric}\n{'lr':>7s} {'epochs':>6s} {'batch':>5s} " + " ".join(f"{m:>9s}" for m in methods)
          + "      mean")
    best = max(table, key=lambda k: statistics.fmean(statistics.fmean(v) for v in table[k].values()))
    for key, per_method in table.items():
        means = [statistics.fmean(per_method[m]) for m in methods]
        mark = "  <- best" if key == best else ""
        print(f"{key[0]:7.0e} {key[1]:6d} {key[2]:5d} " + " ".join(f"{v:9.1f}" for v in means)
              + f" {statistics.fmean(means):9.1f}{mark}")


if __name__ == "__main__":
    main()
