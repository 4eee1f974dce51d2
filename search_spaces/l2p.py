"""L2P search space (docs/baselines.md §3; docs/protocol.md §5).

    python -m study.run --method l2p --search optuna --search-space l2p --num-samples 32

A single run with the recipe of the CODA-Prompt code family (Adam 1e-3, cosine) instead of the protocol's
default lr 5e-4: `python -m study.run --method l2p --set optim.lr=1e-3`; PILOT's recipe is
`--set optim.lr=0.001875 --set optim.schedule=constant`. The L2P++ variant of the CODA-Prompt repo is
`--set method.pool_size=30 --set method.prompt_length=20 --set method.prompt_mode=prefix
--set method.feature=cls --set method.pull_coeff=1`.

The domains bracket the published settings: pool 10 (l2p-pytorch, PILOT) to 30 (L2P++), prompt length
5 to 20, top-5 selection, pull coefficient 0.1 (l2p-pytorch) to 1 (L2P++), lr 0.001875 (PILOT) and 1e-3
(CODA-Prompt). Compare with the papers on `acc_task` (task-averaged, their convention); the search
objective is the harness's `val_maa`.
"""

from ray import tune

METHOD = "l2p"
SPACE = {
    "optim.lr": tune.loguniform(3e-4, 1e-2),
    "method.pool_size": tune.choice([10, 20, 30]),
    "method.prompt_length": tune.choice([5, 10, 20]),
    "method.top_k": tune.choice([3, 5]),
    "method.pull_coeff": tune.choice([0.1, 0.5, 1.0]),
}
