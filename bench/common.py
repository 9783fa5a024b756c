"""Timing and reporting helpers shared by the benchmarks."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tasks.io import write_json

REPORT = Path("reports/bench/latest.json")


@dataclass
class Row:
    bench: str
    name: str
    value: float
    unit: str
    note: str = ""


def best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    """Median wall seconds of `repeat` calls (after the caller's own warm-up)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "system": platform.platform(),
    }


def save(rows: list[Row]) -> Path:
    payload = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "schema": "rows: {bench, name, value, unit, note}; value in the named unit",
        "rows": [asdict(r) for r in rows],
    }
    return write_json(REPORT, payload)
