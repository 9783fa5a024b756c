"""A one-month backfill (`loopline score --start --end`) with score.runner local, then on Dask
with 1 and 2 worker processes (a LocalCluster), against a real Prefect server.

Each run is the CLI in a subprocess, as a user runs it: the scoring phase (validating and
scoring every day, the flow's own meter) gives rows/s; the whole command's wall time (imports,
cluster start, drift and the decision once) is the note. The run's retrain decision is held by
a long cooldown so that no configuration pays for a retrain the others skip.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bench.common import Row
from bench.project import Scratch
from tasks.core.dates import days_between
from tasks.core.errors import LooplineError
from tasks.simulation.upstream import write_day_batch
from tests.harness.prefect_server import prefect_server

log = logging.getLogger(__name__)

FIRST, LAST = dt.date(2013, 5, 1), dt.date(2013, 5, 31)
RUNS = {"local": ("local", 1), "dask, 1 worker": ("dask", 1), "dask, 2 workers": ("dask", 2)}
SUMMARY = re.compile(r": (\d+) days, (\d+) scored, \d+ quarantined in ([\d.]+) s")


@dataclasses.dataclass(frozen=True)
class Backfill:
    rows: int
    scoring_s: float
    command_s: float


def run(scratch: Scratch) -> list[Row]:
    for day in days_between(FIRST, LAST):
        write_day_batch(scratch.params, day)
    results: dict[str, Backfill] = {}
    with prefect_server(scratch.root / ".prefect-server") as api:
        for name, (runner, workers) in RUNS.items():
            results[name] = _backfill(scratch, api, runner, workers)
            log.info("backfill %s: %s", name, results[name])
    rows = [
        Row(
            "backfill",
            f"{FIRST:%b %Y}, {name}",
            r.rows / r.scoring_s,
            "rows/s",
            f"{r.rows:,} rows, {r.scoring_s:.1f} s scoring, {r.command_s:.1f} s whole command",
        )
        for name, r in results.items()
    ]
    two, one, local = (results[n].scoring_s for n in ("dask, 2 workers", "dask, 1 worker", "local"))
    return [
        *rows,
        Row("backfill", "dask 2 workers / 1 worker", one / two, "x", "scoring phase speedup"),
        Row("backfill", "dask 2 workers / local", local / two, "x", "scoring phase speedup"),
    ]


def _backfill(scratch: Scratch, api: str, runner: str, workers: int) -> Backfill:
    """One backfill of the month by the CLI with its own params file."""
    params = yaml.safe_load(scratch.params_path.read_text())
    params["score"] = {**params["score"], "runner": runner}
    params["score"]["dask"] = {**params["score"]["dask"], "address": None, "workers": workers}
    params["retrain"] = {**params["retrain"], "cooldown_days": 100_000}
    path = scratch.root / f"backfill-{runner}-{workers}.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    command = [str(Path(sys.executable).parent / "loopline"), "--params", str(path), "score"]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--start", FIRST.isoformat(), "--end", LAST.isoformat()],
        capture_output=True,
        text=True,
        env={**os.environ, "PREFECT_API_URL": api},
    )
    seconds = time.perf_counter() - started
    found = SUMMARY.search(done.stdout)
    if done.returncode or not found:
        raise LooplineError(f"backfill ({runner}, {workers}): {done.stderr.strip()[-300:]}")
    return Backfill(int(found[2]), float(found[3]), seconds)
