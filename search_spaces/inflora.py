"""InfLoRA search space (docs/baselines.md §8; docs/protocol.md §5, §7.2).

    python -m study.run --method inflora --search optuna --search-space inflora --num-samples 32

The published recipe is the protocol's default (Adam 5e-4, InfLoRA cosine, rank 10) with
`--set method.threshold=0.98` on ImageNet-R (0.95 on CIFAR-100 and DomainNet, the default); DomainNet
uses rank 30.

The domains bracket it: lr around 5e-4, rank 4-16 around 10, λ over InfLoRA's 0.95 / 0.98 and the
b5 variant's 0.99 (the schedule runs from λ to 1.0 on S² of the covariance).
"""

from ray import tune

METHOD = "inflora"
SPACE = {
    "optim.lr": tune.loguniform(1e-4, 1e-2),
    "lora.rank": tune.choice([4, 8, 10, 16]),
    "method.threshold": tune.choice([0.95, 0.97, 0.98, 0.99]),
}
