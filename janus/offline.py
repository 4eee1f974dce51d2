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


def apply_offline_defaults(environ=os.environ) -> dict:
    """Set each offline default that the user has not set; return the ones that were set here."""
    applied = {}
    for key, value in OFFLINE_DEFAULTS.items():
        if key not in environ:
            environ[key] = value
            applied[key] = value
    return applied
