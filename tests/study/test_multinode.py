"""A real multi-node study on one machine: a Ray head and two worker nodes as separate `ray start` processes
(token authentication on, as ray_cluster.yaml runs them), an MLflow tracking server on loopback, and
`python -m study.run --address ... --tracking-uri http://...` as its own process. One worker node is killed
in the middle of the study; Tune retries its trial on the other node from the task checkpoint.

Runs inside the loopback-only namespace of `make test`; every process is stopped by its process group.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from study_helpers import TINY_SETS

pytestmark = [pytest.mark.ray, pytest.mark.cluster, pytest.mark.slow]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout_s: float, what: str, every_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


class Processes:
    """Started processes, each in its own session, so that killing one kills its whole group."""

    def __init__(self, logs: Path):
        self.logs, self.started = logs, []

    def start(self, name: str, argv: list[str], env: dict) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.started.append(process)
        return process

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for process in reversed(self.started):
            self.kill(process)


@pytest.fixture
def cluster(tmp_path_factory):
    """(env with the token, Ray address, MLflow URI, Processes, {node name: worker process})."""
    root = Path(f"/tmp/jmn-{os.getpid()}")            # short: Ray's socket paths have a length limit
    root.mkdir(exist_ok=True)
    logs = tmp_path_factory.mktemp("cluster-logs")
    token = root / "token"
    token.write_text(os.urandom(32).hex())
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true",
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    processes = Processes(logs)
    port, mlflow_port = free_port(), free_port()
    address = f"127.0.0.1:{port}"
    try:
        head = processes.start("head", [
            str(BIN / "ray"), "start", "--head", f"--port={port}", "--num-cpus=0", "--node-ip-address=127.0.0.1",
            f"--temp-dir={root / 'ray'}", "--include-dashboard=false", "--disable-usage-stats", "--block"], env)
        wait_until(lambda: (root / "ray" / "session_latest").exists(), 60, "the Ray head")
        workers = {}
        for count, name in enumerate(("node_a", "node_b"), start=1):   # one at a time: 2 cores start slowly
            workers[name] = processes.start(name, [
                str(BIN / "ray"), "start", f"--address={address}", "--num-cpus=1",
                f"--resources={{\"{name}\": 1}}", "--node-ip-address=127.0.0.1", "--block"], env)
            wait_until(lambda: _alive_workers(address, env) >= count, 120, f"Ray worker node {name}")
        processes.start("mlflow", [
            str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port),
            "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", str(root / "artifacts"), "--workers", "1"], env)
        uri = f"http://127.0.0.1:{mlflow_port}"
        wait_until(lambda: _answers(uri), 120, "the MLflow server")
        assert head.poll() is None
        yield env, address, uri, processes, workers
    finally:
        processes.stop_all()
        subprocess.run(["rm", "-rf", str(root)], check=False)


def _answers(uri: str) -> bool:
    import urllib.request

    try:
        urllib.request.urlopen(f"{uri}/health", timeout=2)
        return True
    except OSError:
        return False


def _alive_workers(address: str, env: dict) -> int:
    code = ("import ray; ray.init(address='%s', logging_level='ERROR'); "
            "print(sum(1 for n in ray.nodes() if n['Alive'] and n['Resources'].get('CPU')))" % address)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else 0


def _node_names(address: str, env: dict) -> dict[str, str]:
    """{custom resource name ("node_a"): Ray node id}."""
    code = ("import ray, json; ray.init(address='%s', logging_level='ERROR'); print(json.dumps({r: n['NodeID'] "
            "for n in ray.nodes() if n['Alive'] for r in n['Resources'] if r.startswith('node_') "
            "and ':' not in r}))" % address)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout.strip().splitlines()[-1])


def study_argv(studies: Path, address: str, uri: str) -> list[str]:
    return [sys.executable, "-m", "study.run", "--studies-dir", str(studies), "--study", "mn",
            "--address", address, "--tracking-uri", uri, "--dataset", "synthetic", "--tasks", "3",
            "--backbone", "test", "--method", "seq-lora", "--seeds", "0,1,2,3", "--max-failures", "1",
            *TINY_SETS, "--set", "data.synthetic_classes=6", "--set", "optim.epochs=6",
            "--set", "data.synthetic_train_per_class=160", "--quiet"]  # trials of a few seconds: one can be hit


def test_a_study_on_three_nodes_survives_a_lost_worker(cluster, tmp_path):
    env, address, uri, processes, workers = cluster
    no_token = {k: v for k, v in env.items() if not k.startswith("RAY_AUTH")}
    refused = subprocess.run(study_argv(tmp_path / "refused", address, uri), env=no_token,
                             capture_output=True, text=True, timeout=180)
    assert refused.returncode == 2 and "RAY_AUTH_MODE=token" in refused.stderr.strip().splitlines()[-1]

    node_names = _node_names(address, env)     # before the study: the kill below must not wait for it
    workers_by_id = {node_names[name]: process for name, process in workers.items()}
    driver = processes.start("driver", study_argv(tmp_path, address, uri), env)
    progress = tmp_path / "mn" / "progress"

    def a_trial_in_its_first_task_on_a_second_node():
        results = tmp_path / "mn" / "results.parquet"
        if not (progress.is_dir() and results.exists()):
            return False
        done = set(pl.read_parquet(results)["trial_id"])
        events = {p.stem: json.loads(p.read_text()) for p in progress.glob("*.json")}
        nodes = {e["node_id"] for e in events.values()}
        early = [e for trial, e in events.items() if trial not in done and e["task"] == 0]
        return len(nodes) >= 2 and early and early[0]["node_id"]

    victim = wait_until(a_trial_in_its_first_task_on_a_second_node, 240, "a trial early in its run", every_s=0.2)
    processes.kill(workers_by_id[victim])          # its worker node dies in the middle of the study
    assert driver.wait(timeout=420) == 0, (processes.logs / "driver.log").read_text()[-3000:]
    log = (processes.logs / "driver.log").read_text()
    assert "ActorUnavailableError" in log or "ActorDiedError" in log   # a trial was lost with node_b, and retried

    rows = pl.read_parquet(tmp_path / "mn" / "results.parquet")
    assert rows.height == 4 and rows["trial_id"].n_unique() == 4 and set(rows["status"]) == {"completed"}
    assert rows["node_id"].n_unique() >= 2         # the trials ran on both worker nodes
    assert sorted(rows["seed"]) == [0, 1, 2, 3]
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    saved = json.loads((tmp_path / "mn" / "study.json").read_text())
    children = client.search_runs([saved["experiment_id"]],
                                  f"tags.mlflow.parentRunId = '{saved['parent_run_id']}'")
    assert sorted(c.data.tags["ray_trial_id"] for c in children) == sorted(rows["trial_id"])   # once each
    for child in children:
        assert [m.step for m in client.get_metric_history(child.info.run_id, "acc")] == [0, 1, 2]
