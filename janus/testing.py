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


def write_imagenet_r_tree(root, classes: int, per_class: int, sides=(18, 40), blocks: int = 1, seed: int = 0,
                          workers: int = 0) -> int:
    """JPEGs under `root/imagenet-r/n<class:08d>/<i:04d>.jpg` (the ImageNet-R folder format); returns the count.

    Each image has random height and width in [sides[0], sides[1]) and random pixels drawn at 1/`blocks` of
    that size, then resized up (blocks=1: pure texture, so any resize or crop changes the pixels). Class c
    draws from its own generator (seed, c), so `workers` processes write the same files as one."""
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    write = partial(_write_class, root, per_class=per_class, sides=tuple(sides), blocks=blocks, seed=seed)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(write, range(classes)))
    else:
        list(map(write, range(classes)))
    return classes * per_class


def _write_class(root, c: int, *, per_class: int, sides: tuple, blocks: int, seed: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng((seed, c))
    folder = root / "imagenet-r" / f"n{c:08d}"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(per_class):
        h, w = (int(v) for v in rng.integers(*sides, size=2))
        pixels = rng.integers(0, 256, size=(max(1, h // blocks), max(1, w // blocks), 3), dtype=np.uint8)
        Image.fromarray(pixels).resize((w, h)).save(folder / f"{i:04d}.jpg", quality=90)
