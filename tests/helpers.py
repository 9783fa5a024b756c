"""Helpers shared by tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    import pandas as pd

VENV_BIN = Path(sys.executable).parent
SLICE_DAYS = 31  # the test slice: January 2013, ≈26k flights, every carrier and origin
DAY = dt.date(2013, 1, 29)  # a nightly batch inside the test window of the trained slice


# Small enough for a test, large enough to learn something: the slice is January 2013.
FAST_TRAINING = {
    "train": {
        "window": {"start": "2013-01-01", "end": "2013-01-31"},
        "validation_days": 3,
        "test_days": 4,
        "net": {"hidden": [32, 16], "max_embedding_dim": 4, "dropout": 0.0},
        "schedule": {
            "batch_size": 256,
            "max_epochs": 4,
            "patience": 2,
            "learning_rate": 0.003,
            "weight_decay": 0.0,
        },
    },
    "distill": {
        "net": {"hidden": [16], "max_embedding_dim": 4, "dropout": 0.0},
        "schedule": {
            "batch_size": 256,
            "max_epochs": 4,
            "patience": 2,
            "learning_rate": 0.01,
            "weight_decay": 0.0,
        },
        "prune": {"sparsity": 0.5, "finetune_epochs": 1},
    },
    "evaluate": {"latency_batch_size": 256, "latency_repeats": 3, "cost_passes": 2},
    "baseline": {"max_iter": 30},
    # A month of winter data supports less than a year does: lower floors (AUC ≈ .61 here),
    # and room for a busy CI machine.
    "promote": {
        "min_auc": 0.55,
        "min_teacher_auc_share": 0.9,
        "max_latency_ms_p95": 1000.0,
        "max_ece": 0.2,
    },
}


def write_params(root: Path, base: dict, source: Path, **sections: dict) -> Path:
    """A params.yaml under `root` reading `source` as a file, with fast training settings and
    `sections` overridden (one level deep)."""
    params = copy.deepcopy(base)
    params["dataset"]["source"] = {"kind": "file", "path": str(source)}
    params["validate"]["min_rows"] = 100
    for overrides in (FAST_TRAINING, sections):
        for name, override in overrides.items():
            params[name] = {**params[name], **override}
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def project_with_stages(root: Path, base: dict, source: Path, *names: str) -> Path:
    """A project at `root` over `source` with the named pipeline stages already run in it (the
    stages write relative to the working directory; the caller's is restored)."""
    from tasks import stages
    from tasks.core.config import load_params

    write_params(root, base, source)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        params = load_params("params.yaml")
        for name in names:
            stages.STAGES[name](params)
    finally:
        os.chdir(cwd)
    return root


def set_params(root: Path, section: str, **values: object) -> None:
    """Change keys of one section of the params.yaml under `root`."""
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params[section] = {**params[section], **values}
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def spawn_cli(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    """Start the real `loopline` console script in a subprocess (to wait on, or to kill)."""
    return subprocess.Popen(
        [str(VENV_BIN / "loopline"), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def run_cli(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """Run the real `loopline` console script in a subprocess, to its end."""
    proc = spawn_cli(*args, cwd=cwd)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def register_again(params) -> str:
    """Version 1's files registered once more: a new version exactly as good as the first."""
    import mlflow
    import pandas as pd

    from tasks.core.layout import day_paths
    from tasks.registry.aliases import registry_client
    from tasks.registry.versions import log_and_register
    from tasks.training.distill import variant_folders

    name = params.registry.model_name
    variant = registry_client(params).get_model_version(name, "1").tags["loopline.variant"]
    example = pd.read_parquet(day_paths(params, DAY)["incoming"]).head(5)
    with mlflow.start_run(run_name="registered again"):
        return log_and_register(
            variant_folders(params)[variant],
            name,
            example,
            {"loopline.variant": variant},
            params.tracking,
        )


# `loopline api` settings that keep a test short: polls, flushes and batch waits of a blink.
FAST_API = {"poll_seconds": 0.2, "flush_seconds": 0.2, "max_wait_ms": 20.0}


@contextlib.contextmanager
def running_api(params, **api) -> Iterator[str]:
    """The app on a free loopback port until the block ends (then stopped, its store flushed):
    a real uvicorn server in a thread."""
    import uvicorn

    from tasks.core.config import override
    from tasks.serving.online.app import create_app

    # The socket is bound here and handed to uvicorn: no other process can take the port
    # between choosing it and listening on it.
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    params = override(params, "test", "api", **{**FAST_API, **api, "port": port})
    server = uvicorn.Server(
        uvicorn.Config(create_app(params), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)
        listening.close()
        assert not thread.is_alive(), "the server did not stop within 60 s"


# Gates version argv[1] of the trained project in the cwd once a file `go` exists there: run as
# `python -c GATE_SCRIPT VERSION` to promote from another process.
GATE_SCRIPT = """
import json, sys, time
from pathlib import Path
from tasks.core.config import load_params
from tasks.registry.promote import gate_version
from tasks.data.split import TrainingRecord, load_split
params = load_params("params.yaml")
record = TrainingRecord.load(params.train.model_dir)
holdout = load_split(params, record.window, record.windows).test
metrics = json.loads(Path("reports/metrics/candidate.json").read_text())
while not Path("go").exists():
    time.sleep(0.01)
gate_version(params, sys.argv[1], holdout, metrics, None, True)
"""


def prefect_flow_run(flow_run_id):
    """The flow run as the Prefect server holds it (name, tags, state and its message)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


def prefect_run_logs(flow_run_id, expect: str, timeout_s: float = 30.0) -> list[str]:
    """The messages of a flow run's logs as the Prefect server holds them, read until one
    contains `expect` (logs reach the server in batches) or `timeout_s` passes."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    deadline = time.monotonic() + timeout_s
    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
    while True:
        messages: list[str] = []
        with get_client(sync_client=True) as client:
            while page := client.read_logs(log_filter, limit=200, offset=len(messages)):
                messages += [entry.message for entry in page]
        if any(expect in m for m in messages) or time.monotonic() > deadline:
            return messages
        time.sleep(0.5)


SENSOR_ROWS = 200


# The params of that data set: its dataset section and validation rules.
SENSORS_DATASET = {
    "name": "plant-sensors",
    "row_noun": "reading",
    "source": {"kind": "file", "path": "readings.csv"},
    "event_time": "taken_at",
    "window": {"start": "2024-01-01", "end": "2024-12-31"},
    "target": {"name": "failed", "column": "status", "op": "==", "value": 1},
    "id_columns": ["reading_id"],
    "leakage_columns": ["repaired_at"],
    "features": {"categorical": ["site", "shift"], "numeric": ["temp", "hour"]},
}
SENSORS_RULES = {
    "site": {"values": ["north", "south"]},
    "shift": {"values": [1, 2, 3], "nullable": False},
    "temp": {"min": -30, "max": 60},
    "hour": {"min": 0, "max": 23},
}


def sensor_readings() -> pd.DataFrame:
    """A synthetic file of another data set: plant sensor readings, one column of each kind."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    temp = rng.uniform(-5.0, 35.0, SENSOR_ROWS)
    temp[:7] = np.nan
    return pd.DataFrame(
        {
            "reading_id": [f"r{i:04d}" for i in range(SENSOR_ROWS)],
            "taken_at": pd.date_range("2024-01-01", periods=SENSOR_ROWS, freq="9h").astype(str),
            "site": rng.choice(["north", "south", "east"], SENSOR_ROWS),
            "shift": rng.integers(1, 4, SENSOR_ROWS),
            "temp": temp,
            "operator_note": [f"note {i}" for i in range(SENSOR_ROWS)],
            "score": rng.random(SENSOR_ROWS),  # the upstream's own score: named like ours
            "failed": rng.choice([0, 1], SENSOR_ROWS, p=[0.8, 0.2]),
        }
    )
