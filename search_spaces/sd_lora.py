"""SD-LoRA search space (docs/baselines.md §9; docs/protocol.md §5).

    python -m study.run --method sd-lora --search optuna --search-space sd_lora --num-samples 32

SD-LoRA trains with SGD (momentum 0.9, no weight decay) at an effectively constant lr: 8e-3 CIFAR-100,
1e-2 ImageNet-R, 2e-2 DomainNet. The optimiser and schedule are therefore pinned below (one-value
domains); a single run with the ImageNet-R recipe is
`python -m study.run --method sd-lora --set optim.optimizer=sgd --set optim.schedule=constant
--set optim.lr=1e-2`. The RR and KD variants: `--set method.rr=true`, `--set method.kd=true
--set method.reset_magnitudes=false`.

The domains bracket the recipe: SGD lr 3e-3 to 5e-2, rank 4-16 around 10, magnitude init around 0.8.
"""

from ray import tune

METHOD = "sd-lora"
SPACE = {
    "optim.optimizer": tune.choice(["sgd"]),
    "optim.schedule": tune.choice(["constant"]),
    "optim.lr": tune.loguniform(3e-3, 5e-2),
    "lora.rank": tune.choice([4, 8, 10, 16]),
    "method.magnitude_init": tune.choice([0.5, 0.8, 1.0]),
}
