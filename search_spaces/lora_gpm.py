"""LoRA-GPM search space (docs/baselines.md §7; docs/protocol.md §5, §7).

    python -m study.run --method lora-gpm --search optuna --search-space lora_gpm --num-samples 32

LoRA-GPM+GR (the composite step rectified by GR-T, docs/method.md §5, Fig. 6 of the paper) is the same
search with `--set method.gr=true`; per-task pairs instead of one shared pair with
`--set lora.structure=per_task`; GPM's own statistic (125 sampled images, σ² rule) with
`--set method.statistic=representation --set method.criterion=eig`.

The domains bracket the protocol: Adam around InfLoRA's 5e-4, rank 10 (the InfLoRA family) with 4-16
around it, and the start of the threshold schedule ε_t = λ + (1 − λ)·t/T over InfLoRA's λ (0.95
CIFAR-100, 0.98 ImageNet-R) and the Janus OE grid, on λ² (InfLoRA) or λ (GPM) of the covariance.
"""

from ray import tune

METHOD = "lora-gpm"
SPACE = {
    "optim.lr": tune.loguniform(1e-4, 1e-2),
    "lora.rank": tune.choice([4, 8, 10, 16]),
    "method.threshold": tune.choice([0.95, 0.97, 0.98, 0.99]),
    "method.criterion": tune.choice(["eig_sq", "eig"]),
}
