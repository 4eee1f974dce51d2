"""The fixed-seed regression check of the embedded default: accuracy matrices that refactors must keep.

    python tests/golden/embedded.py            # print the current matrices next to the stored ones
    python tests/golden/embedded.py --write    # store the current matrices (only after a deliberate change)

The recipe is the embedded default (janus/recipes.py) cut to 2 epochs per task so that the test stays fast;
every method of the default study runs with seed 0. `tests/test_golden.py` compares against the stored file.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

STORED = Path(__file__).with_name("embedded_acc.json")
METHODS = ("janus", "seq-lora", "lora-gpm", "inflora", "finetune")
CUT = {"optim.epochs": 2, "seed": 0}


def acc_matrix(method: str) -> list[list[float]]:
    from janus.config import ExperimentConfig
    from janus.protocol import run_experiment
    from janus.recipes import single_run

    cfg = ExperimentConfig.from_dict({**single_run(method), **CUT})
    return [[round(float(a), 4) for a in row] for row in run_experiment(cfg).acc_matrix.tolist()]


def identical(a, b) -> bool:
    """Equal matrices, NaN equal to NaN (unseen tasks)."""
    flat = [(x, y) for ra, rb in zip(a or [], b or []) for x, y in zip(ra, rb)]
    return bool(a) and len(a) == len(b) and all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in flat)


def platform() -> dict[str, str]:
    """What decides float rounding: torch's version and the CPU kernels it dispatches to."""
    import torch

    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def main(argv: list[str]) -> int:
    from janus.offline import entry_point_policy

    entry_point_policy(argv)
    current = {method: acc_matrix(method) for method in METHODS}
    current["_platform"] = platform()
    if "--write" in argv:
        STORED.write_text(json.dumps(current, indent=1) + "\n")
        print(f"wrote {STORED}")
        return 0
    stored = json.loads(STORED.read_text()) if STORED.exists() else {}
    print(f"platform {current['_platform']} (stored on {stored.get('_platform')})")
    for method in METHODS:
        same = "same" if identical(stored.get(method), current[method]) else "DIFFERENT"
        print(f"{method:10s} {same}: last row {current[method][-1]} (stored {stored.get(method, [[]])[-1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
