"""Online inference on loopback: `loopline api` with batching (a), the same with batching off
(b), and `mlflow models serve` of the same registered version (c), each a real server in its own
process, driven by one httpx async client at fixed concurrency levels.

Each level sends the same one-row requests to the three servers in turn (side by side: the
ratios see the same moments of the machine), bounded in count and time. Figures: throughput
(requests/s), p50 and p99 latency per server and level; ratios a/c and a/b.

Runs inside `make bench` (the scratch project's champion), or alone in a project that has a
champion: `python -m bench.bench_api` (small scale, a table on the log).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import yaml

from bench.common import Row, at_least, at_most
from bench.project import Scratch
from tasks.core.config import Params, load_params
from tasks.core.errors import LooplineError
from tasks.core.io import read_table
from tasks.core.tags import CHAMPION

log = logging.getLogger(__name__)

LEVELS = (1, 8, 32)
REQUESTS = 400  # per server and level, at most
LEVEL_SECONDS = 20.0  # per server and level, at most
START_SECONDS = 120.0
SERVERS = ("a: api batched", "b: api unbatched", "c: mlflow serve")


def run(scratch: Scratch) -> list[Row]:
    return measure(scratch.params, scratch.params_path, scratch.root / "bench-api")


def measure(params: Params, params_path: Path, work: Path) -> list[Row]:
    work.mkdir(parents=True, exist_ok=True)
    records = _records(params, REQUESTS)
    features = [{k: r[k] for k in params.dataset.features.names} for r in records]
    bench_params = _quiet_params(params_path, work)
    ports = [_free_port() for _ in SERVERS]
    commands = [
        [*_loopline(), "--params", str(bench_params), "api", "--port", str(ports[0])],
        [
            *_loopline(),
            "--params",
            str(bench_params),
            "api",
            "--port",
            str(ports[1]),
            "--no-batching",
        ],
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            f"models:/{params.registry.model_name}@{CHAMPION}",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(ports[2]),
        ],
    ]
    probes = ["/readyz", "/readyz", "/ping"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": _tracking_uri(params)}
    procs = [
        subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=(work / f"server{i}.log").open("w")
        )
        for i, cmd in enumerate(commands)
    ]
    try:
        up = [
            _wait_ready(f"http://127.0.0.1:{p}{probe}", proc)
            for p, probe, proc in zip(ports, probes, procs, strict=True)
        ]
        before = _rss(procs[0])
        results = asyncio.run(_levels(ports, up, records, features))
        results[("a: api batched", "rss")] = {"before": before, "after": _rss(procs[0])}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return _rows(results, up)


def _rss(proc: subprocess.Popen) -> float:
    """Resident memory of a server process, bytes."""
    import psutil

    return float(psutil.Process(proc.pid).memory_info().rss)


def _loopline() -> list[str]:
    return [str(Path(sys.executable).parent / "loopline")]


def _tracking_uri(params: Params) -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI") or params.tracking.uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    return uri


def _quiet_params(params_path: Path, work: Path) -> Path:
    """The project's params with the shadow off: the challenger would double the work of (a)
    and (b) but not of (c)."""
    raw = yaml.safe_load(Path(params_path).read_text())
    raw["api"] = {**raw["api"], "shadow": False, "canary_share": 0.0}
    target = work / "params.yaml"
    target.write_text(yaml.safe_dump(raw, sort_keys=False))
    return target


def _records(params: Params, count: int) -> list[dict]:
    dataset = params.dataset
    columns = [*dataset.id_columns, dataset.event_time, *dataset.features.names]
    frame = read_table(params.ingest.features_dir)[columns].head(count)
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen) -> bool:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    log.warning("bench api: %s never became ready (see bench-api/server*.log)", url)
    return False


async def _levels(ports, up, records, features) -> dict[tuple[str, int], dict[str, float]]:
    results = {}
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64)) as client:
        for level in LEVELS:
            for server, port, ready in zip(SERVERS, ports, up, strict=True):
                if not ready:
                    continue
                mlflow = server.startswith("c")
                path = "/invocations" if mlflow else "/v1/predict"
                bodies = [{"dataframe_records": [f]} for f in features] if mlflow else records
                url = f"http://127.0.0.1:{port}{path}"
                # Warm-up at the level: its connections are open before the clock starts.
                await _load(client, url, bodies[: 2 * level], level)
                results[(server, level)] = await _load(client, url, bodies, level)
                log.info("bench api: %s at %d: %s", server, level, results[(server, level)])
    return results


async def _load(client: httpx.AsyncClient, url: str, bodies: list, level: int) -> dict[str, float]:
    """`level` clients, each sending the next body as soon as its last answer came, until the
    bodies or LEVEL_SECONDS run out."""
    latencies: list[float] = []
    failures = 0
    queue = iter(bodies)
    started = time.perf_counter()

    async def client_loop() -> None:
        nonlocal failures
        for body in queue:
            if time.perf_counter() - started > LEVEL_SECONDS:
                return
            sent = time.perf_counter()
            reply = await client.post(url, json=body)
            latencies.append(time.perf_counter() - sent)
            failures += reply.status_code != 200

    await asyncio.gather(*(client_loop() for _ in range(level)))
    wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "failures": failures,
        "throughput": len(latencies) / wall,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def _rows(results: dict, up: list[bool]) -> list[Row]:
    rss = results.pop(("a: api batched", "rss"))
    rows: list[Row] = [
        Row("api", "a: RSS after the levels", rss["after"], "bytes"),
        at_most(
            "api", "a: RSS growth over the levels", rss["after"] / rss["before"] - 1, "share", 0.2
        ),
    ]
    for (server, level), r in results.items():
        note = f"{r['requests']} requests, {r['failures']} failed"
        rows += [
            Row("api", f"{server} @{level} throughput", r["throughput"], "req/s", note),
            Row("api", f"{server} @{level} p50", r["p50_ms"], "ms"),
            Row("api", f"{server} @{level} p99", r["p99_ms"], "ms"),
        ]
    a, b, c = SERVERS
    for level in LEVELS:
        if (a, level) in results and (c, level) in results:
            ratio = results[(a, level)]["throughput"] / results[(c, level)]["throughput"]
            rows.append(at_least("api", f"a/c throughput @{level}", ratio, "x", 5.0))
        if (a, level) in results and (b, level) in results:
            ratio = results[(a, level)]["throughput"] / results[(b, level)]["throughput"]
            goal = 2.0 if level == max(LEVELS) else None
            rows.append(
                at_least("api", f"a/b throughput @{level}", ratio, "x", goal)
                if goal
                else Row("api", f"a/b throughput @{level}", ratio, "x")
            )
    if not up[2]:
        rows.append(Row("api", "mlflow models serve", 0.0, "", "did not start: see server2.log"))
    return rows


def main() -> int:
    from tasks.core.runtime import go_offline, setup_logging

    go_offline()
    setup_logging()
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "params.yaml")
    try:
        rows = measure(load_params(path), path, Path("reports/bench/api"))
    except LooplineError as exc:
        log.error("bench api: %s", exc)
        return 1
    for row in rows:
        log.info("%-34s %10.2f %-5s %s %s", row.name, row.value, row.unit, row.target, row.note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
