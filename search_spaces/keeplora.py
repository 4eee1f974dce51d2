"""KeepLoRA search space (docs/baselines.md §10; the ViT class-incremental port is [OUR CHOICE]).

    python -m study.run --method keeplora --search optuna --search-space keeplora --num-samples 32

A single run closer to the official MTIL recipe (rank 16, AdamW-like lr 1e-3):
`python -m study.run --method keeplora --set lora.rank=16 --set optim.lr=1e-3`; the official code's
output-space weight basis is `--set method.weight_basis=output`.

The domains bracket the official thresholds (0.85 on the weights for vision, 0.99 on features), the rank
(the harness's 10 and the official 16) and the lr around 1e-3; the search objective is `val_maa`.
"""

from ray import tune

METHOD = "keeplora"
SPACE = {
    "optim.lr": tune.loguniform(1e-4, 1e-2),
    "lora.rank": tune.choice([10, 16]),
    "method.weight_threshold": tune.choice([0.75, 0.85, 0.95]),
    "method.feature_threshold": tune.choice([0.97, 0.99, 0.995]),
}
