"""`make bench`: every benchmark in a scratch copy of the project, one table, and
reports/bench/latest.json (schema in bench/common.py)."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import (
    bench_api,
    bench_backfill,
    bench_drift,
    bench_memory,
    bench_orchestration,
    bench_scoring,
    bench_training,
    bench_validation,
)
from bench.common import REPORT, Row, save
from bench.project import scratch_project
from tasks.core.errors import LooplineError
from tasks.core.runtime import go_offline, setup_logging

# Orchestration first: its direct run trains the models the later benchmarks read and score.
BENCHES = [
    bench_orchestration,
    bench_training,
    bench_scoring,
    bench_memory,
    bench_drift,
    bench_validation,
    bench_api,
    bench_backfill,  # last: it starts a Prefect server of its own for the Dask workers
]
log = logging.getLogger("bench")


def main() -> int:
    go_offline()
    setup_logging()
    params_path = Path(sys.argv[1] if len(sys.argv) > 1 else "params.yaml").resolve()
    report = REPORT.resolve()
    rows: list[Row] = []
    try:
        with scratch_project(params_path) as scratch:
            for bench in BENCHES:
                started = time.perf_counter()
                rows += bench.run(scratch)
                log.info("%s: %.0f s", bench.__name__, time.perf_counter() - started)
    except LooplineError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    Console(width=200).print(_table(rows))
    targets = [r for r in rows if r.met is not None]
    print(f"targets met: {sum(r.met for r in targets)} of {len(targets)}")
    print(f"written: {save(rows, report)}")
    return 0


def _table(rows: list[Row]) -> Table:
    table = Table(title="loopline benchmarks")
    for column in ("bench", "figure", "value", "unit", "target", "", "note"):
        table.add_column(column)
    for r in rows:
        mark = "" if r.met is None else ("[green]✓[/]" if r.met else "[red]✗[/]")
        value, unit = (r.value / 1e6, "MB") if r.unit == "bytes" else (r.value, r.unit)
        shown = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3f}"
        table.add_row(r.bench, r.name, shown, unit, r.target, mark, r.note)
    return table


if __name__ == "__main__":
    sys.exit(main())
