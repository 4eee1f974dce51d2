"""Fixtures of the study tests: a local Ray started once per module."""

import os

import pytest


@pytest.fixture(scope="module")
def local_ray():
    """One loopback Ray per test module (run the tests inside scripts/offline, as `make test` does)."""
    import ray

    from study.cluster import TUNE_ENVIRONMENT

    for key, value in TUNE_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20)
    yield
    ray.shutdown()
