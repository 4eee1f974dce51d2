"""Janus-LoRA's claims on the embedded default (digits, 5 tasks, `tiny-fmnist`, NME): the ablation rows ①-⑦
over 3 seeds, run directly (no Ray, no MLflow), and the ratios the default study's report prints.

    python benchmarks/claims.py                        # 7 rows x 3 seeds, 2 worker processes
    python benchmarks/claims.py --seeds 5 --workers 1 --set optim.epochs=3

Prints the GR interference ratio (⑦ vs ⑥, per block and overall), the DML danger ratio (⑦ vs ⑤) and the
ablation table (analysis/claims.py), then the wall time. The recipe is the shared embedded one
(janus/recipes.py), not tuned for Janus.
"""

from __future__ import annotations

import argparse
import itertools
import time
from concurrent.futures import ProcessPoolExecutor

from analysis.claims import ROWS, AblationRun, claims_markdown


def run_row(job: tuple[tuple[bool, bool, bool], int, dict]) -> AblationRun:
    import torch

    from janus import run_experiment
    from janus.recipes import single_run

    torch.set_num_threads(1)
    flags, seed, overrides = job
    config = {**single_run("janus"), "method.oe": flags[0], "method.gr": flags[1], "method.dml": flags[2],
              "seed": seed, **overrides}
    result = run_experiment(config)
    return AblationRun(flags, seed, result.metrics["acc"], result.metrics["bwt"], result.diagnostics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="processes, one thread each (default: 2)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = parser.parse_args()
    from janus.pretrain import ensure_backbone
    from janus.recipes import BACKBONE

    ensure_backbone(BACKBONE)             # build it once here, not in every worker
    overrides = dict(pair.split("=", 1) for pair in args.set)
    jobs = [(flags, seed, overrides) for flags, seed in itertools.product(ROWS, range(args.seeds))]
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        runs = list(pool.map(run_row, jobs))
    print(claims_markdown(runs))
    print(f"\n{len(jobs)} runs in {time.perf_counter() - start:.0f}s with {args.workers} worker(s)")


if __name__ == "__main__":
    main()
