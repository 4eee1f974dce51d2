"""Ray: a local loopback cluster or an existing one, and the resource checks done before any trial starts.

Local runs use `ray.init(address="local", include_dashboard=False, ...)`: never a stale cluster from
/tmp/ray (docs/architecture.md §5.4), no dashboard server, a capped object store (trials pass little through it).
A trial that asks for more GPUs or CPUs than any node has would stay PENDING forever (gotcha 10), so the
driver fails at once with a clear message instead.
"""

from __future__ import annotations

import contextlib
import os

from janus.errors import UserError

OBJECT_STORE_BYTES = 256 * 2**20
TUNE_ENVIRONMENT = {
    "RAY_CHDIR_TO_TRIAL_DIR": "0",   # trials keep the driver's cwd (every path we pass is absolute anyway)
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",  # one snapshot per task is intended
    "RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS": "0",
    "RAY_AIR_NEW_OUTPUT": "0",       # Tune's older output engine, the one that uses study/progress.py
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # only result.json (study/tuner.py), no CSV/TensorBoard
}


@contextlib.contextmanager
def ray_session(address: str | None):
    """Connect to `address` or start a local cluster; reuse a connection a caller already opened."""
    for key, value in TUNE_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    import ray

    if ray.is_initialized():
        yield
        return
    if address:
        connect(ray, address)
    else:
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                 object_store_memory=OBJECT_STORE_BYTES)
    try:
        yield
    finally:
        ray.shutdown()


AUTH_HINT = ("the cluster uses token authentication: run the study with RAY_AUTH_MODE=token and "
             "RAY_AUTH_TOKEN_PATH=<the head's token file> (ray_cluster.yaml: ~/ray_auth_token)")


def connect(ray, address: str) -> None:
    """ray.init(address), with connection and authentication failures as one line naming the fix."""
    try:
        ray.init(address=address)
    except Exception as error:  # Ray raises AuthenticationError, ConnectionError or RuntimeError here
        text = " ".join(f"{type(e).__name__}: {e}" for e in _causes(error))
        if "auth" in text.lower() or "token" in text.lower():
            raise UserError(f"cannot join the Ray cluster at {address}: {AUTH_HINT}") from None
        if isinstance(error, (ConnectionError, RuntimeError, TimeoutError)):
            first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
            raise UserError(f"cannot join the Ray cluster at {address} ({first}); check --address and that "
                            "`ray status` works on that machine") from None
        raise


def _causes(error: BaseException):
    """The error and the ones it was raised from (Ray wraps an AuthenticationError in a ConnectionError)."""
    seen = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def check_address(address: str, timeout_s: float = 5.0) -> None:
    """An explicit `host:port` (or `ray://host:port`) must accept a connection within `timeout_s`: otherwise
    ray.init waits for a long time. `auto` and `local` are Ray's own look-ups."""
    import socket

    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address!r}: expected host:port, ray://host:port, auto or local")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise UserError(f"no Ray cluster answers at {address} ({error.strerror or error}); start it with "
                        "`ray start --head` (or `ray up ray_cluster.yaml`) and check the address; if "
                        f"{AUTH_HINT}") from None


def trial_resources(cpus: float, gpus: float | None) -> dict[str, float]:
    """{"cpu", "gpu"} per trial; gpus=None -> 1 when the cluster has a GPU, else 0. Fails fast if no
    node of the cluster could ever hold one trial."""
    import ray

    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    most_gpus = max((n.get("GPU", 0.0) for n in nodes), default=0.0)
    most_cpus = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
    if gpus is None:
        gpus = 1.0 if most_gpus >= 1 else 0.0
    if gpus > most_gpus:
        raise UserError(f"trials ask for {gpus:g} GPU each but no node of the Ray cluster has that many "
                        f"(largest: {most_gpus:g} GPUs); use --gpus-per-trial 0 (CPU) or a smaller fraction, "
                        "or start GPU nodes first (on an autoscaling cluster keep min_workers >= 1)")
    if cpus > most_cpus:
        raise UserError(f"trials ask for {cpus:g} CPUs each but the largest node has {most_cpus:g}; "
                        "lower --cpus-per-trial")
    return {"cpu": float(cpus), "gpu": float(gpus)}
