"""The offline policy belongs to the entry points: importing the library changes no environment variable."""

import os
import subprocess
import sys

from janus.offline import OFFLINE_DEFAULTS, apply_offline_defaults, entry_point_policy


def _clean_env():
    return {k: v for k, v in os.environ.items() if k not in OFFLINE_DEFAULTS}


def test_import_janus_changes_nothing():
    code = "import janus, janus.protocol, study.driver, analysis.tables, os; print(os.environ.get('HF_HUB_OFFLINE'))"
    out = subprocess.run([sys.executable, "-c", code], env=_clean_env(), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"


def test_entry_points_go_offline_unless_online():
    env = {}
    apply_offline_defaults(env)
    assert env["HF_HUB_OFFLINE"] == "1" and env["RAY_USAGE_STATS_ENABLED"] == "0"
    assert apply_offline_defaults({"HF_HUB_OFFLINE": "0"}).get("HF_HUB_OFFLINE") is None  # the user's value wins
    saved = dict(os.environ)
    try:
        os.environ.pop("HF_HUB_OFFLINE", None)
        entry_point_policy(["--online"])
        assert "HF_HUB_OFFLINE" not in os.environ and os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    finally:
        os.environ.clear()
        os.environ.update(saved)
