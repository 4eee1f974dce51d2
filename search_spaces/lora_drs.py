"""LoRA-DRS search space (docs/baselines.md §11; docs/protocol.md §5, §7.3).

    python -m study.run --method lora-drs --search optuna --search-space lora_drs --num-samples 32

LoRA-DRS+GR (GR-T with the retain projector, docs/method.md §5.1, Fig. 6 of the paper) is the same search
with `--set method.gr=true`. The published ImageNet-R recipe: Adam 5e-4, head lr 5e-4,
`--set method.triplet_margin=2.0 --set method.triplet_weight=0.2` (CIFAR-100: head lr 2e-3, margin 1.0, λ 0.05,
the defaults; DomainNet: margin 2.0, λ 0.1, rank 40).

The domains bracket those: lr around 5e-4, head lr 5e-4 to 2e-3, rank 4-16 around 10, the triplet
weight and margin over the published pairs, the DRS energy at and below the code's 0.99.
"""

from ray import tune

METHOD = "lora-drs"
SPACE = {
    "optim.lr": tune.loguniform(1e-4, 1e-2),
    "optim.head_lr": tune.loguniform(5e-4, 2e-3),
    "lora.rank": tune.choice([4, 8, 10, 16]),
    "method.triplet_weight": tune.choice([0.05, 0.1, 0.2]),
    "method.triplet_margin": tune.choice([1.0, 2.0]),
    "method.energy": tune.choice([0.95, 0.97, 0.99]),
}
