"""Keep every entry point off the network unless the user opted in.

Ray usage stats, MLflow telemetry and Hugging Face hub look-ups are turned off by default; a value the user
has already set wins, so `export HF_HUB_OFFLINE=0` (or `RAY_USAGE_STATS_ENABLED=1`,
`MLFLOW_DISABLE_TELEMETRY=false`) turns each back on.
"""

import os

OFFLINE_DEFAULTS = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}


ONLINE_FLAG = "--online"
ONLINE_HELP = "allow Hugging Face hub downloads and look-ups (default: offline; also HF_HUB_OFFLINE=0)"


def entry_point_policy(argv) -> dict:
    """What every command-line entry point calls first: the offline defaults, except hub look-ups with
    `--online` (telemetry and usage stats stay off either way)."""
    if ONLINE_FLAG in (argv or []):
        return apply_offline_defaults(keys=[k for k in OFFLINE_DEFAULTS if not k.startswith("HF_HUB_OFFLINE")])
    return apply_offline_defaults()


def apply_offline_defaults(environ=os.environ, keys=None) -> dict:
    """Set each offline default that the user has not set; return the ones that were set here."""
    applied = {}
    for key, value in OFFLINE_DEFAULTS.items():
        if key not in environ and (keys is None or key in keys):
            environ[key] = value
            applied[key] = value
    return applied
