"""Peak memory of scoring 1M and 10M rows, each in a fresh process (peak RSS is per process).

Ours streams batches, so the peak should be the process's baseline (Python, torch, pyarrow,
the model) plus a batch per scoring thread and one output row group, whatever the file. The
common approach (pandas + pyfunc) is shown at 1M rows for scale.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

import bench
from bench.common import Row, at_most
from bench.project import Scratch
from bench.workload import save_pyfunc, write_rows

VARIANT = "student"
SIZES = (1_000_000, 10_000_000)
LIMIT_BYTES = 1.5e9


def run(scratch: Scratch) -> list[Row]:
    work = scratch.root / "bench-memory"
    work.mkdir(exist_ok=True)
    peaks = {}
    for rows in SIZES:
        source = write_rows(scratch.params, work / f"rows-{rows}.parquet", rows)
        peaks[rows] = _child("ours", source, work)
        if rows == SIZES[0]:
            save_pyfunc(scratch.params, VARIANT, source, work / VARIANT)
            common = _child("common", source, work)
        source.unlink()
    small, large = (peaks[n] for n in SIZES)
    growth = large["peak_rss"] / small["peak_rss"] - 1
    return [
        *(
            at_most(
                "memory",
                f"peak RSS scoring {n:,} rows",
                peaks[n]["peak_rss"],
                "bytes",
                LIMIT_BYTES,
                f"{peaks[n]['rows_per_s']:,.0f} rows/s; "
                f"{peaks[n]['baseline_rss'] / 1e6:,.0f} MB before scoring",
            )
            for n in SIZES
        ),
        at_most("memory", "peak RSS growth 1M → 10M rows", growth, "share", 0.2),
        Row(
            "memory",
            f"common approach peak RSS, {SIZES[0]:,} rows",
            common["peak_rss"],
            "bytes",
            f"{common['peak_rss'] / small['peak_rss']:.1f}x ours",
        ),
    ]


def _child(mode: str, source: Path, work: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(bench.__file__).resolve().parent.parent)}
    cmd = [sys.executable, "-m", "bench.bench_memory", mode, str(source), str(work)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _status(field: str) -> int:
    """Bytes of a /proc/self/status field: VmRSS now, VmHWM the peak. (ru_maxrss would carry
    the parent's peak over the fork.)"""
    with open("/proc/self/status") as status:
        kb = next(line for line in status if line.startswith(f"{field}:")).split()[1]
    return int(kb) * 1024


def _measure(mode: str, source: Path, work: Path) -> dict:
    import time

    import pandas as pd

    from bench.workload import variant
    from tasks.core.config import load_params
    from tasks.serving.bulk import score_parquet

    params = load_params("params.yaml")
    champion = variant(params, VARIANT)
    ids = params.dataset.id_columns
    if mode == "ours":
        run = functools.partial(
            score_parquet,
            champion,
            source,
            work / "out.parquet",
            id_columns=ids,
            batch_rows=params.score.chunk_rows,
        )
    else:
        import mlflow

        served = mlflow.pyfunc.load_model(str(work / VARIANT))

        def run() -> None:
            frame = pd.read_parquet(source)
            scores = served.predict(frame)["score"].to_numpy()
            frame[ids].assign(score=scores).to_parquet(work / "out.parquet", index=False)

    baseline = _status("VmRSS")  # the process with its model loaded, before any row
    started = time.perf_counter()
    run()
    done = pq.read_metadata(source).num_rows
    seconds = time.perf_counter() - started
    peak = _status("VmHWM")
    return {"peak_rss": peak, "baseline_rss": baseline, "rows_per_s": done / seconds}


if __name__ == "__main__":
    mode, source, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    print(json.dumps(_measure(mode, source, work)))
