"""`make bench`: run every benchmark, print one table, write reports/bench/latest.json."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from bench import bench_inference, bench_training, bench_validation
from bench.common import save
from tasks.config import load_params
from tasks.errors import LooplineError
from tasks.runtime import go_offline, setup_logging

BENCHES = [bench_validation, bench_training, bench_inference]


def main() -> int:
    go_offline()
    setup_logging()
    try:
        params = load_params(sys.argv[1] if len(sys.argv) > 1 else "params.yaml")
        rows = [row for bench in BENCHES for row in bench.run(params)]
    except LooplineError as exc:
        print(f"bench: error: {exc} (run `make demo` first to build the data)", file=sys.stderr)
        return 1
    table = Table(title="loopline benchmarks")
    for column in ("bench", "figure", "value", "unit", "note"):
        table.add_column(column)
    for r in rows:
        table.add_row(r.bench, r.name, f"{r.value:,.3f}", r.unit, r.note)
    Console().print(table)
    print(f"written: {save(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
