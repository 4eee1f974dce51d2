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


def build_tiny(config: dict):
    """(cfg, scenario, method) for a flat config, built the way `run_experiment` builds them, on the CPU."""
    return _experiment(config)[1:]


def tiny_experiment(config: dict):
    """The `janus.experiment.Experiment` of a flat config, on the CPU."""
    return _experiment(config)[0]


def _experiment(config: dict):
    from janus.config import ExperimentConfig
    from janus.experiment import build_experiment
    from janus.methods import resolve_config

    experiment = build_experiment(resolve_config(ExperimentConfig.from_dict(config)), device="cpu")
    return experiment, experiment.cfg, experiment.scenario, experiment.method


def task_info(cfg, task, num_tasks: int):
    """The `TaskInfo` the protocol would pass for `task` (CPU loaders from the config)."""
    import torch

    from janus.experiment import make_task_info

    return make_task_info(cfg, task, num_tasks, torch.device("cpu"))
