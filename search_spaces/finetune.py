"""Full sequential fine-tuning search space: the learning rate, around the CODA-Prompt FT recipe (Adam 5e-5).

    python -m study.run --method finetune --dataset imagenet-r --tasks 10 --backbone dino --preset paper --search optuna --num-samples 16 --replicate-top 3 --seeds 5

Fine-tuning trains every backbone weight, so its useful learning rates are one to two orders of magnitude
below the LoRA methods' (docs/protocol.md §5); the head shares the lr unless `--set optim.head_lr=...`.
"""

from ray import tune

METHOD = "finetune"
SPACE = {
    "optim.lr": tune.loguniform(1e-6, 1e-3),
}
