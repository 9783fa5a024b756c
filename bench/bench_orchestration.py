"""What orchestration costs: the training flow under Prefect + MLflow vs the same stage
functions called directly on the same data, and a no-op `dvc repro`.

Runs in the scratch project (bench/project.py). A first, untimed direct run pays what only the
first run in a process pays (imports, creating the MLflow store and registry) so that neither
timed run gets it; then the flow and the direct calls repeat the same seeded work, the direct
run last, leaving the models the later benchmarks score with. The validation verdict is reused
alike by all. The Prefect server's start-up is timed on its own: a deployment's worker talks
to a running server, and `loopline train` pays it once per process.
"""

from __future__ import annotations

import subprocess
import time

from bench.common import Row, at_most
from bench.project import Scratch
from tasks import stages
from tasks.core.config import Params

DIRECT = ("validate", "train", "evaluate", "distill", "promote")


def run(scratch: Scratch) -> list[Row]:
    params = scratch.params
    _direct(params)  # warm-up, untimed
    server = _start_prefect()
    from flows.training import training_flow

    started = time.perf_counter()
    training_flow(str(scratch.params_path))
    flow = time.perf_counter() - started
    direct = _direct(params)
    direct_total = sum(direct.values())
    noop = _noop_repro()
    stage_note = ", ".join(f"{name} {seconds:.1f}" for name, seconds in direct.items())
    return [
        Row("orchestration", "stage functions called directly", direct_total, "s", stage_note),
        Row("orchestration", "training flow (Prefect + MLflow)", flow, "s", "server running"),
        at_most(
            "orchestration",
            "flow overhead over direct calls",
            flow / direct_total - 1,
            "share",
            0.15,
            f"{flow - direct_total:+.1f} s on {direct_total:.0f} s of work",
        ),
        Row(
            "orchestration",
            "Prefect ephemeral server start",
            server,
            "s",
            "fresh PREFECT_HOME, once per process",
        ),
        noop,
    ]


def _direct(params: Params) -> dict[str, float]:
    """Each stage of the training flow called as `dvc repro` calls it: seconds by stage."""
    seconds = {}
    for name in DIRECT:
        started = time.perf_counter()
        stages.STAGES[name](params)
        seconds[name] = time.perf_counter() - started
    return seconds


def _noop_repro() -> Row:
    """Record the direct run's outputs in dvc.lock (`dvc commit`), then time `dvc repro`,
    which must find nothing to do."""
    subprocess.run(["dvc", "commit", "-f", "-q"], check=True, capture_output=True)
    started = time.perf_counter()
    proc = subprocess.run(["dvc", "repro"], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    up_to_date = "Data and pipelines are up to date" in proc.stdout
    return at_most(
        "dvc",
        "no-op dvc repro (6 stages)",
        seconds,
        "s",
        3.0,
        "" if up_to_date else "NOT up to date: " + proc.stdout.strip().splitlines()[-1],
    )


def _start_prefect() -> float:
    """Start the ephemeral Prefect server by asking it for its health."""
    from prefect.client.orchestration import get_client

    started = time.perf_counter()
    with get_client(sync_client=True) as client:
        client.hello()
    return time.perf_counter() - started
