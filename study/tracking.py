"""MLflow tracking: one experiment per study, a parent run for the study, one nested child run per trial.

    experiment "<study>"
      run "<study>" (parent; tags janus.role=study)          <- the analysis logs its tables here
        run "<trial name>" (child; tag ray_trial_id)          params: the resolved flat config
            metrics acc, maa, ..., val_acc_all at step=task; final_* at the end
            artifacts acc_matrix.parquet, acc_matrix.json, config.json, diagnostics.json

Only the driver talks to MLflow (study/recorder.py, a Tune callback, from the results the trials report),
so a local sqlite store works on a multi-node cluster too, and there is one writer. The runs are opened with
`MlflowClient`, not Ray's `MLflowLoggerCallback`, which opens a second run when a trial is restored
(docs/architecture.md §6.1): a restored trial finds its run by the `ray_trial_id` tag and continues it, and a
step it already logged is not logged again. Default store: `sqlite:////<abs studies dir>/mlflow.db` (an
absolute path); an `http://` server works as well (e.g. one shared by several studies or users).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from janus.errors import UserError

PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "ray_trial_id"
STEP_METRIC = "acc"  # logged at every task; its history tells which steps a resumed run already has
PARAM_LIMIT = 6000  # MLflow's maximum param value length


@dataclass(frozen=True)
class StudyTracking:
    """Where a study's runs live; stored in study.json and handed to every trial."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str


SUMMARY_TABLE = "summary_table.json"  # the parent run's mean ± std table (mlflow.log_table)

def default_tracking_uri(studies_dir: Path) -> str:
    """$MLFLOW_TRACKING_URI if set, else an absolute sqlite file in the studies directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(Path(studies_dir) / 'mlflow.db').resolve()}"


def ui_command(tracking_uri: str) -> str:
    """The command that shows the runs (a server URI is opened in the browser directly); secrets masked."""

    tracking_uri = mask_uri(tracking_uri)
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri} in a browser"
    return f"mlflow ui --backend-store-uri {tracking_uri} --host 127.0.0.1 --port 5000"


def client(tracking_uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "mssql", "databricks")


def check_tracking_uri(tracking_uri: str, timeout_s: float = 5.0) -> None:
    """A known MLflow scheme, and a server that answers within `timeout_s` (http/https); else one line."""
    from urllib.error import URLError
    from urllib.request import urlopen


    scheme = tracking_uri.split("://", 1)[0].split("+", 1)[0] if "://" in tracking_uri else "file"
    if scheme not in SCHEMES:
        raise UserError(f"--tracking-uri {mask_uri(tracking_uri)!r}: unknown scheme {scheme!r}; use one of "
                        f"{', '.join(SCHEMES)}")
    if scheme in ("http", "https"):
        try:
            with urlopen(tracking_uri.rstrip("/") + "/health", timeout=timeout_s):
                pass
        except (URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise UserError(f"MLflow server {mask_uri(tracking_uri)} does not answer ({reason}); start it, or "
                            "drop --tracking-uri for the local sqlite store") from None


@contextmanager
def store_lock(tracking_uri: str):
    """Serialise the creation of a local sqlite store: two studies starting at once would both run
    MLflow's schema migration on a new file, and the second fails."""
    if not tracking_uri.startswith("sqlite:///"):
        yield
        return
    from filelock import FileLock

    database = Path(tracking_uri.removeprefix("sqlite:///"))
    database.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(database) + ".lock", timeout=120):
        yield


def open_study(name: str, tracking_uri: str, artifact_dir: Path, tags: dict, params: dict,
               description: str = "") -> StudyTracking:
    """Create (or reuse) the study's experiment, describe and tag it, and start its parent run."""
    with store_lock(tracking_uri):
        mlflow_client = client(tracking_uri)
        mlflow_client.search_experiments(max_results=1)  # creates and migrates a new store, under the lock
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is None:
        location = None if tracking_uri.startswith(("http://", "https://")) else Path(artifact_dir).as_uri()
        experiment_id = mlflow_client.create_experiment(name, artifact_location=location)
    else:
        experiment_id = experiment.experiment_id
        if experiment.lifecycle_stage == "deleted":
            mlflow_client.restore_experiment(experiment_id)
    for key, value in {**tags, "mlflow.note.content": description}.items():   # the UI's experiment description
        mlflow_client.set_experiment_tag(experiment_id, key, str(value)[:5000])
    run = mlflow_client.create_run(experiment_id, run_name=name,
                                   tags={**tags, "janus.role": "study", "mlflow.note.content": description})
    log_params(mlflow_client, run.info.run_id, params)
    return StudyTracking(tracking_uri, experiment_id, run.info.run_id)


def reopen_study(tracking: StudyTracking) -> None:
    client(tracking.tracking_uri).update_run(tracking.parent_run_id, status="RUNNING")


def finish_study(tracking: StudyTracking, status: str, table: dict, files: list[Path]) -> None:
    """Log the study's summary table (`mlflow.log_table`: one artifact the UI shows as a table, instead of a
    chart per number) and files on the parent run, and close it with `status`."""
    mlflow_client = client(tracking.tracking_uri)
    if table and any(table.values()):
        mlflow_client.log_table(tracking.parent_run_id, data=table, artifact_file=SUMMARY_TABLE)
    for file in files:
        if file.exists():
            mlflow_client.log_artifact(tracking.parent_run_id, str(file))
    mlflow_client.set_terminated(tracking.parent_run_id, status=status)


def log_params(mlflow_client, run_id: str, params: dict) -> None:
    from mlflow.entities import Param

    items = [Param(k, _param_text(v)[:PARAM_LIMIT]) for k, v in params.items()]
    for start in range(0, len(items), 100):  # MLflow accepts at most 100 params per batch
        mlflow_client.log_batch(run_id, params=items[start:start + 100])


def _param_text(value) -> str:
    return json.dumps(value, default=list) if isinstance(value, (list, tuple, dict)) else str(value)


def log_metrics(mlflow_client, run_id: str, metrics: dict, step: int) -> None:
    """Log every numeric scalar of `metrics` at `step` (lists, strings and None are skipped)."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, step) for k, v in metrics.items()
             if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if items:
        mlflow_client.log_batch(run_id, metrics=items)


def find_trial_run(mlflow_client, experiment_id: str, trial_id: str) -> str | None:
    """The run a trial opened on an earlier attempt, found by its `ray_trial_id` tag."""
    runs = mlflow_client.search_runs([experiment_id], f"tags.{TRIAL_TAG} = '{trial_id}'", max_results=1)
    return runs[0].info.run_id if runs else None


class TrialRun:
    """The child run of one trial: per-task metrics (each step once), final metrics, artifacts, status."""

    def __init__(self, tracking_uri: str, run_id: str, logged_steps: set[int]):
        self.client = client(tracking_uri)
        self.run_id, self.logged_steps = run_id, logged_steps

    @classmethod
    def open(cls, tracking: StudyTracking, trial_id: str, name: str, tags: dict, params: dict) -> TrialRun:
        """Continue the trial's own run (found by its `ray_trial_id` tag), or start one under the parent."""
        mlflow_client = client(tracking.tracking_uri)
        run_id = find_trial_run(mlflow_client, tracking.experiment_id, trial_id)
        if run_id:
            mlflow_client.update_run(run_id, status="RUNNING")
            steps = {m.step for m in mlflow_client.get_metric_history(run_id, STEP_METRIC)}
            return cls(tracking.tracking_uri, run_id, steps)
        tags = {**tags, PARENT_TAG: tracking.parent_run_id, TRIAL_TAG: trial_id}
        run = mlflow_client.create_run(tracking.experiment_id, run_name=name, tags=tags)
        log_params(mlflow_client, run.info.run_id, params)
        return cls(tracking.tracking_uri, run.info.run_id, set())

    def log_task(self, task: int, metrics: dict) -> None:
        """Metrics at step=task, once: a trial resumed from an earlier checkpoint repeats no step."""
        if task not in self.logged_steps:
            log_metrics(self.client, self.run_id, metrics, step=task)
            self.logged_steps.add(task)

    def set_tags(self, tags: dict) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)

    def finish(self, final_metrics: dict, artifacts: dict[str, bytes]) -> None:
        """Final metrics (`final_<name>`), the artifacts (file name -> content), status FINISHED."""
        log_metrics(self.client, self.run_id, {f"final_{k}": v for k, v in final_metrics.items()}, step=0)
        with tempfile.TemporaryDirectory() as folder:
            for file_name, content in artifacts.items():
                Path(folder, file_name).write_bytes(content)
            self.client.log_artifacts(self.run_id, folder)
        self.client.set_terminated(self.run_id, status="FINISHED")

    def end(self, status: str, error: str | None = None) -> None:
        """FAILED (with the error as a tag) or KILLED (stopped early by the scheduler)."""
        if error:
            self.client.set_tag(self.run_id, "error", error[:PARAM_LIMIT])
        self.client.set_terminated(self.run_id, status=status)


# --- masking credentials in URIs (what the argv tag, study.json and the UI hint show) ------------------
# Secrets in URIs: what is recorded or printed never holds a password or a token.

MASK = "***"
SECRET_PARAMS = re.compile(r"pass|secret|token|key|auth|credential|signature", re.IGNORECASE)


def mask_uri(uri: str) -> str:
    """`scheme://user:pw@host/db?token=t` -> `scheme://user:***@host/db?token=***`; other URIs unchanged."""
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if SECRET_PARAMS.search(k) else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return uri  # nothing secret; urlunsplit would also rewrite sqlite:////abs paths
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def is_masked(uri: str) -> bool:
    return MASK in uri


def mask_words(words: list[str] | tuple[str, ...]) -> list[str]:
    """An argv with every URI-looking word masked (`--tracking-uri postgresql://u:pw@h/db`)."""
    return [mask_uri(w) if "://" in w else w for w in words]
