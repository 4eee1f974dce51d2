"""Test-wide settings: no outside traffic, small thread pools, fast tiny configs."""

import os

from janus.offline import apply_offline_defaults

apply_offline_defaults()
os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)  # tiny models: threads cost more than they give, and Ray trials run beside


def tiny_config(**overrides) -> dict:
    """A seconds-long experiment: test backbone, synthetic data, 2 tasks, 1 epoch."""
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


@pytest.fixture
def tiny():
    return tiny_config
