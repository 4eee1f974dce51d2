"""BiLoRA search space (docs/baselines.md §12; unofficial-implementation hyperparameters, [UNVERIFIED]).

    python -m study.run --method bilora --search optuna --search-space bilora --num-samples 32

A single run with the unofficial code's recipe (n_frq 3000, α 300, Adam 5e-4 as InfLoRA) is the default:
`python -m study.run --method bilora`. On the tiny `test` backbone (64 × 64 weights) set
`--set method.n_frq=400` or smaller: the tasks' disjoint supports must fit in d_out·d_in frequencies.

The domains bracket the unofficial defaults (n_frq 3000 of 768² frequencies, α = 300) by about 3× each way
and the lr around InfLoRA's 5e-4; the search objective is the harness's `val_maa`.
"""

from ray import tune

METHOD = "bilora"
SPACE = {
    "optim.lr": tune.loguniform(1e-4, 1e-2),
    "method.n_frq": tune.choice([1000, 3000, 10000]),
    "method.alpha": tune.choice([100.0, 300.0, 1000.0]),
}
