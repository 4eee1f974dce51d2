"""Test-wide settings: no outside traffic, small thread pools, fast tiny configs."""

import os

from janus.offline import apply_offline_defaults

apply_offline_defaults()
os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")

import pytest  # noqa: E402
import torch  # noqa: E402

from janus.testing import tiny_config  # noqa: E402,F401  (re-exported for older imports)

torch.set_num_threads(1)  # tiny models: threads cost more than they give, and Ray trials run beside


@pytest.fixture
def tiny():
    return tiny_config
