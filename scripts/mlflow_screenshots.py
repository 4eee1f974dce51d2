"""Screenshots of a study in the MLflow UI with headless Chromium (a check that the UI shows what we log).

    scripts/offline .venv/bin/python scripts/mlflow_screenshots.py --study NAME [--studies-dir studies] [--out DIR]

Starts `mlflow ui` on 127.0.0.1, opens Chromium (`apt install chromium`) over the DevTools protocol, waits
for the charts to render, and writes: runs.png (the experiment with its description), trial_metrics.png
(one Janus trial's metric charts: acc_task_<j>, acc_new, acc_old per task), trial_system.png (its system/
metrics) and parent_table.png (the parent run's summary_table.json). Not part of the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

UI_PORT, DEBUG_PORT = 5055, 9333


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"error: nothing answers at {url}")


async def screenshot(url: str, out: Path, wait_s: float) -> None:
    import websockets

    pages = [t for t in json.load(urllib.request.urlopen(f"http://127.0.0.1:{DEBUG_PORT}/json/list"))
             if t["type"] == "page"]
    async with websockets.connect(pages[0]["webSocketDebuggerUrl"], max_size=50_000_000) as ws:
        counter = 0

        async def call(method: str, **params):
            nonlocal counter
            counter += 1
            await ws.send(json.dumps({"id": counter, "method": method, "params": params}))
            while True:
                message = json.loads(await ws.recv())
                if message.get("id") == counter:
                    return message.get("result", {})

        await call("Emulation.setDeviceMetricsOverride", width=1600, height=1300, deviceScaleFactor=1, mobile=False)
        await call("Page.navigate", url=url)
        await asyncio.sleep(wait_s)            # the charts render lazily: a real wait, not virtual time
        out.write_bytes(base64.b64decode((await call("Page.captureScreenshot", format="png"))["data"]))


def pages(tracking_uri: str, study: str) -> dict[str, str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        raise SystemExit(f"error: no MLflow experiment {study!r} in {tracking_uri}")
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    parent = next(r for r in runs if r.data.tags.get("janus.role") == "study")
    trial = next(r for r in runs if r.data.tags.get("method") == "janus") if any(
        r.data.tags.get("method") == "janus" for r in runs) else next(r for r in runs if r is not parent)
    base = f"http://127.0.0.1:{UI_PORT}/#/experiments/{experiment.experiment_id}"
    return {"runs.png": f"{base}/runs", "trial_metrics.png": f"{base}/runs/{trial.info.run_id}/model-metrics",
            "trial_system.png": f"{base}/runs/{trial.info.run_id}/system-metrics",
            "parent_table.png": f"{base}/runs/{parent.info.run_id}/artifacts/summary_table.json"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", required=True)
    parser.add_argument("--studies-dir", default="studies")
    parser.add_argument("--out", default=None, help="default: <studies-dir>/<study>/screenshots")
    parser.add_argument("--wait", type=float, default=20.0, help="seconds per page (default %(default)s)")
    args = parser.parse_args(argv)
    studies = Path(args.studies_dir).resolve()
    uri = f"sqlite:///{studies / 'mlflow.db'}"
    out = Path(args.out) if args.out else studies / args.study / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    targets = pages(uri, args.study)
    ui = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
                           "--port", str(UI_PORT)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    browser = subprocess.Popen(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                                f"--remote-debugging-port={DEBUG_PORT}", "--remote-allow-origins=*", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{UI_PORT}/")
        wait_for(f"http://127.0.0.1:{DEBUG_PORT}/json/version")
        for name, url in targets.items():
            asyncio.run(screenshot(url, out / name, args.wait))
            print(f"wrote {out / name}")
    finally:
        browser.terminate()
        ui.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
