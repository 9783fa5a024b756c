"""A real `prefect server start` on a free loopback port, for as long as a block runs.

Dask worker processes report their task runs to a Prefect API; the ephemeral server would start
one server per worker (docs/operations.md#prefect-start-up), so the tests and the backfill bench
run against a real one: its own PREFECT_HOME (never the user's history), analytics, UI and the
background services it does not need off (the API and the task run recorder stay), stopped with
its children whatever happens in the block.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tasks.core.errors import LooplineError

log = logging.getLogger(__name__)

IDLE_SERVICES = (
    "SCHEDULER",
    "LATE_RUNS",
    "FOREMAN",
    "CANCELLATION_CLEANUP",
    "PAUSE_EXPIRATIONS",
    "REPOSSESSOR",
    "TRIGGERS",
    "EVENT_PERSISTER",
    "CLEANUP_RECONCILER",
    "DB_VACUUM",
)
STARTUP_TIMEOUT_S = 180.0  # 15-20 s on a quiet 2-core machine; far longer while it is busy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def prefect_server(home: Path, timeout_s: float = STARTUP_TIMEOUT_S) -> Iterator[str]:
    """Start the server with PREFECT_HOME=`home`; yields its API URL once /api/health answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "DO_NOT_TRACK": "true",
        # Only the task run recorder is needed (Prefect 3 records task runs from events):
        # every other background service stays off, to start faster and leave the CPU alone.
        **{f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in IDLE_SERVICES},
    }
    env.pop("PREFECT_API_URL", None)
    home.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    with (home / "server.log").open("w") as output:
        server = subprocess.Popen(
            [*command, "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with its children
        )
    try:
        _wait_healthy(server, url, timeout_s, home / "server.log")
        log.info("prefect server at %s (PREFECT_HOME %s)", url, home)
        yield url
    finally:
        _stop(server)


def _wait_healthy(server: subprocess.Popen, url: str, timeout_s: float, output: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = output.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise LooplineError(f"prefect server exited with {server.returncode}: {tail[0]}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/health", timeout=2) as reply,
        ):
            if reply.status == 200:
                return
        time.sleep(0.5)
    raise LooplineError(f"prefect server at {url}: no health after {timeout_s:.0f} s; see {output}")


def _stop(server: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
