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
    """(cfg, scenario, method) for a flat config, built the way `run_experiment` builds them (CPU)."""
    import torch

    from janus.backbone import build_backbone, data_mean_std, feature_dim
    from janus.config import ExperimentConfig
    from janus.data import build_scenario
    from janus.methods import MethodContext, build_method

    cfg = ExperimentConfig.from_dict(config)
    torch.manual_seed(cfg.seed)                  # the random test backbone is not in checkpoints
    backbone = build_backbone(cfg.backbone, img_size=cfg.data.image_size)
    scenario = build_scenario(cfg.data, cfg.seed, mean_std=data_mean_std(backbone))
    context = MethodContext(cfg.lora, len(scenario.tasks), tuple(t.num_classes for t in scenario.tasks),
                            feature_dim(backbone))
    return cfg, scenario, build_method(cfg, backbone, context)


def task_info(cfg, task, num_tasks: int):
    """The `TaskInfo` the protocol would pass for `task` (CPU loaders from the config)."""
    from functools import partial

    import torch

    from janus.methods import TaskInfo
    from janus.protocol import _loader

    return TaskInfo(task.index, num_tasks, task.offset, task.num_classes, task.train, task.train_eval,
                    partial(_loader, cfg=cfg, device=torch.device("cpu")), epochs=cfg.optim.epochs)
