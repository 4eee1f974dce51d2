"""Shared pieces of the study tests: a local Ray started once per module, tiny study flags, MLflow reads."""

import json
import os

import pytest

# tests/conftest.py `tiny_config` as study flags: synthetic data, 4 classes, 2 tasks, one short epoch
TINY_SETS = ["--set", "data.synthetic_classes=4", "--set", "data.synthetic_train_per_class=16",
             "--set", "data.synthetic_test_per_class=8", "--set", "optim.epochs=1", "--set", "optim.batch_size=16",
             "--set", "lora.rank=4"]


def tiny_study(studies_dir, name, *extra, tasks=2):
    return ["--studies-dir", str(studies_dir), "--study", name, "--dataset", "synthetic", "--tasks", str(tasks),
            "--method", "seq-lora", "--cpus-per-trial", "1", *TINY_SETS, *extra]


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


def study_runs(study_dir):
    """(client, parent run, child runs) of a study, read back from MLflow."""
    from mlflow import MlflowClient

    saved = json.loads((study_dir / "study.json").read_text())
    client = MlflowClient(saved["tracking_uri"])
    children = client.search_runs([saved["experiment_id"]], f"tags.mlflow.parentRunId = '{saved['parent_run_id']}'")
    return client, client.get_run(saved["parent_run_id"]), children
