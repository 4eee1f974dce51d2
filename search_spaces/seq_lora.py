"""Sequential LoRA (no protection) search space: the lr and rank dimensions of `search_spaces/janus.py`.

    python -m study.run --method seq-lora --dataset imagenet-r --tasks 10 --backbone dino --preset paper --search optuna --num-samples 64 --replicate-top 3 --seeds 5

The baseline has no hyperparameters of its own, so it searches exactly the shared dimensions of the Janus
space with the same ranges; run it with the same `--num-samples` as Janus for an equal budget.
"""

from ray import tune

METHOD = "seq-lora"
SPACE = {
    "lora.rank": tune.choice([4, 8, 10, 16, 32]),
    "optim.lr": tune.loguniform(1e-4, 2e-3),
}
