"""Helpers of the study tests: tiny study flags and MLflow reads (imported by name; conftest.py holds the
fixtures)."""

import json

# tests/conftest.py `tiny_config` as study flags: synthetic data, 4 classes, 2 tasks, one short epoch
TINY_SETS = ["--set", "data.synthetic_classes=4", "--set", "data.synthetic_train_per_class=16",
             "--set", "data.synthetic_test_per_class=8", "--set", "optim.epochs=1", "--set", "optim.batch_size=16",
             "--set", "lora.rank=4"]


def tiny_study(studies_dir, name, *extra, tasks=2):
    return ["--studies-dir", str(studies_dir), "--study", name, "--dataset", "synthetic", "--tasks", str(tasks),
            "--backbone", "test",
            "--method", "seq-lora", "--cpus-per-trial", "1", *TINY_SETS, *extra]


def study_runs(study_dir):
    """(client, parent run, child runs) of a study, read back from MLflow."""
    from mlflow import MlflowClient

    saved = json.loads((study_dir / "study.json").read_text())
    client = MlflowClient(saved["tracking_uri"])
    children = client.search_runs([saved["experiment_id"]], f"tags.mlflow.parentRunId = '{saved['parent_run_id']}'")
    return client, client.get_run(saved["parent_run_id"]), children
