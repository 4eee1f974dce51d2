"""Tiny configurations for tests and examples: seconds on a CPU, no downloads."""


def tiny_config(**overrides) -> dict:
    """A seconds-long experiment: test backbone, synthetic data (4 classes), 2 tasks, 1 epoch; flat keys."""
    config = {
        "backbone.name": "test",
        "data.dataset": "synthetic",
        "data.tasks": 2,
        "data.synthetic_classes": 4,
        "data.synthetic_train_per_class": 16,
        "data.synthetic_test_per_class": 8,
        "data.image_size": 32,
        "lora.rank": 4,
        "optim.epochs": 1,
        "optim.batch_size": 16,
        "optim.lr": 1e-3,
        "method.name": "seq-lora",
        "seed": 0,
    }
    config.update(overrides)
    return config
