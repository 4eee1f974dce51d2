"""LoDA search space (docs/baselines.md §13; every hyperparameter value is [UNVERIFIED], no public code).

    python -m study.run --method loda --search optuna --search-space loda --num-samples 32

The paper names r, w_G (general-branch weight) and ρ_max (GAO radius) as its hyperparameters without
values available to us, so all three are searched, with the lr. `method.rho_max=0` turns GAO off;
`method.gao_direction=descent` is the other reading of "perturb along B2's gradient".
The search objective is the harness's `val_maa`.
"""

from ray import tune

METHOD = "loda"
SPACE = {
    "optim.lr": tune.loguniform(1e-4, 1e-2),
    "lora.rank": tune.choice([4, 10, 16]),
    "method.general_weight": tune.choice([0.25, 0.5, 1.0]),
    "method.rho_max": tune.choice([0.0, 0.01, 0.05, 0.1]),
}
