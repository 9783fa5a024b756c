"""Online inference on loopback: `loopline api` with batching (a), the same with batching off
(b), and `mlflow models serve` of the same registered version (c), each a real server in its own
process, driven by one aiohttp client (on uvloop) at fixed concurrency levels.

Phases, each bounded in time:
- levels: at each of LEVELS concurrent clients, the servers take turns for ROUNDS rounds
  (side by side: the ratios see the same moments of the machine), each sending one-row
  requests for LEVEL_SECONDS in all, after a warm-up at the level in each turn. Figures:
  throughput, p50 and p99 per server and level; ratios a/c (throughput, p99) and a/b. Level 1
  is the single-request latency floor.
- sustained: (a) at the highest level for `sustain_s`, its RSS sampled from start to end.
- hot swap (`make bench` only, in the scratch copy: it moves @champion): (a) at the highest
  level while another version is promoted; failed requests and the versions answering, in
  order. The champion is put back afterwards.

The load generator is aiohttp, not httpx: an httpx async client capped all three servers at the
same few hundred requests/s on 2 cores, so the ratios measured the client.

Runs inside `make bench` (the scratch project's champion), or alone in a project that has a
champion: `python -m bench.bench_api [params.yaml] [--sustain SECONDS]` (a table on the log).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
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
LEVEL_SECONDS = 4.5  # per server and level, in ROUNDS turns, each after a warm-up
ROUNDS = 3  # on a shared machine, one turn each let a busy moment land on one server only
WARM_SECONDS = 0.3
SUSTAIN_SECONDS = 60.0  # (a) at the highest level, its RSS watched
SWAP_SECONDS = 8.0  # the hot-swap phase; the promotion comes after SWAP_AFTER
SWAP_AFTER = 1.0
POLL_SECONDS = 2.0  # the servers' api.poll_seconds here: the swap lands within the phase
REQUESTS = 2000  # distinct one-row bodies, cycled
START_SECONDS = 120.0
RSS_GROWTH = 0.10  # "flat": at most this share of growth from the start to the end
A, B, C = SERVERS = ("a: api batched", "b: api unbatched", "c: mlflow serve")


@dataclass
class Load:
    """What one phase of load saw."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    wall: float = 0.0
    versions: list[str] = field(default_factory=list)  # the answering version, run-length

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall

    def ms(self, q: float) -> float:
        return float(np.percentile(np.array(self.latencies) * 1000, q))

    def add(self, other: Load) -> None:
        self.latencies += other.latencies
        self.failures += other.failures
        self.wall += other.wall

    def saw(self, version: str) -> None:
        if not self.versions or self.versions[-1] != version:
            self.versions.append(version)


def run(scratch: Scratch) -> list[Row]:
    return measure(
        scratch.params, scratch.params_path, scratch.root / "bench-api", SUSTAIN_SECONDS, swap=True
    )


def measure(
    params: Params, params_path: Path, work: Path, sustain_s: float, swap: bool
) -> list[Row]:
    work.mkdir(parents=True, exist_ok=True)
    records = _records(params, REQUESTS)
    features = [{k: r[k] for k in params.dataset.features.names} for r in records]
    bodies = {
        A: [json.dumps(r).encode() for r in records],
        C: [json.dumps({"dataframe_records": [f]}).encode() for f in features],
    }
    bodies[B] = bodies[A]
    env = {**os.environ, "MLFLOW_TRACKING_URI": _tracking_uri(params)}
    with _servers(params, _bench_params(params_path, work), work, env) as (urls, procs):
        rows = _run(_levels(urls, bodies))
        if A in urls:
            rows += _run(_sustained(urls[A], bodies[A], procs[A], sustain_s))
            if swap:
                rows += _hot_swap(params, urls[A], bodies[A])
    if C not in urls:
        rows.append(Row("api", "mlflow models serve", 0.0, "", "did not start: see server2.log"))
    return rows


@contextlib.contextmanager
def _servers(
    params: Params, bench_params: Path, work: Path, env: dict[str, str]
) -> Iterator[tuple[dict[str, str], dict[str, subprocess.Popen]]]:
    """The three servers, each in its own process; yields the URLs of those that became ready
    (path included) and the processes."""
    loopline = [str(Path(sys.executable).parent / "loopline"), "--params", str(bench_params)]
    ports = {server: _free_port() for server in SERVERS}
    commands = {
        A: [*loopline, "api", "--port", str(ports[A])],
        B: [*loopline, "api", "--port", str(ports[B]), "--no-batching"],
        C: [
            *(sys.executable, "-m", "mlflow", "models", "serve", "--env-manager", "local"),
            *("-m", f"models:/{params.registry.model_name}@{CHAMPION}"),
            *("-h", "127.0.0.1", "-p", str(ports[C])),
        ],
    }
    # Per server: the readiness probe and the scoring path.
    paths = {
        A: ("/readyz", "/v1/predict"),
        B: ("/readyz", "/v1/predict"),
        C: ("/ping", "/invocations"),
    }
    procs = {
        server: subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=(work / f"server{i}.log").open("w")
        )
        for i, (server, cmd) in enumerate(commands.items())
    }
    try:
        base = {server: f"http://127.0.0.1:{port}" for server, port in ports.items()}
        urls = {
            server: base[server] + paths[server][1]
            for server in SERVERS
            if _wait_ready(base[server] + paths[server][0], procs[server])
        }
        yield urls, procs
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _run(coro: Coroutine[Any, Any, list[Row]]) -> list[Row]:
    """The load generator's event loop: uvloop where the platform has it."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


async def _levels(urls: dict[str, str], bodies: dict[str, list[bytes]]) -> list[Row]:
    loads: dict[tuple[str, int], Load] = {}
    for level in LEVELS:
        for _ in range(ROUNDS):
            for server, url in urls.items():
                async with _session(level) as session:
                    # Warm-up at the level: its connections are open before the clock starts.
                    await _load(session, url, bodies[server], level, WARM_SECONDS)
                    turn = await _load(session, url, bodies[server], level, LEVEL_SECONDS / ROUNDS)
                loads.setdefault((server, level), Load()).add(turn)
        for server in urls:
            load = loads[(server, level)]
            log.info(
                "bench api: %s @%d: %.0f req/s, p50 %.2f ms, p99 %.2f ms, %d failed",
                *(server, level, load.throughput, load.ms(50), load.ms(99), load.failures),
            )
    return _level_rows(loads)


def _level_rows(loads: dict[tuple[str, int], Load]) -> list[Row]:
    rows: list[Row] = []
    for (server, level), load in loads.items():
        note = f"{len(load.latencies)} requests, {load.failures} failed"
        rows += [
            Row("api", f"{server} @{level} throughput", load.throughput, "req/s", note),
            Row("api", f"{server} @{level} p50", load.ms(50), "ms"),
            Row("api", f"{server} @{level} p99", load.ms(99), "ms"),
        ]
    if (A, 1) in loads:
        floor = loads[(A, 1)]
        rows.append(
            Row("api", "a: single-request floor (p50 @1)", floor.ms(50), "ms", "one client")
        )
    top = max(LEVELS)
    for level in LEVELS:
        a, b, c = (loads.get((server, level)) for server in SERVERS)
        if a and c:
            rows.append(
                at_least("api", f"a/c throughput @{level}", a.throughput / c.throughput, "x", 5.0)
            )
            rows.append(at_most("api", f"a/c p99 @{level}", a.ms(99) / c.ms(99), "x", 1.0))
        if a and b:
            ratio = a.throughput / b.throughput
            rows.append(
                at_least("api", f"a/b throughput @{level}", ratio, "x", 2.0)
                if level == top
                else Row("api", f"a/b throughput @{level}", ratio, "x")
            )
    return rows


async def _sustained(
    url: str, bodies: list[bytes], proc: subprocess.Popen, seconds: float
) -> list[Row]:
    """(a) at the highest level for `seconds`; its RSS at the start (warm: after the levels)
    and the end, and the most it reached."""
    level = max(LEVELS)
    samples = [_rss(proc)]

    async def watch() -> None:
        while True:
            await asyncio.sleep(1.0)
            samples.append(_rss(proc))

    watcher = asyncio.create_task(watch())
    async with _session(level) as session:
        load = await _load(session, url, bodies, level, seconds)
    watcher.cancel()
    samples.append(_rss(proc))
    start, end, most = samples[0], samples[-1], max(samples)
    note = f"{seconds:.0f} s at {level} clients, {len(load.latencies)} requests"
    return [
        Row("api", f"a: sustained @{level} throughput", load.throughput, "req/s", note),
        Row("api", "a: RSS at the start of the sustained run", start, "bytes"),
        Row("api", "a: RSS at its end", end, "bytes", f"most {most / 1e6:.0f} MB"),
        at_most(
            "api", "a: RSS growth over the sustained run", end / start - 1, "share", RSS_GROWTH
        ),
        at_most("api", "a: failed requests, sustained", load.failures, "requests", 0),
    ]


def _hot_swap(params: Params, url: str, bodies: list[bytes]) -> list[Row]:
    """(a) under load at the highest level while @champion moves to another version, then
    back once the load is over."""
    from tasks.registry.aliases import alias_version, force_promote, registry_client

    client, name = registry_client(params), params.registry.model_name
    before = alias_version(client, name, CHAMPION)
    target = _another_version(params, before)

    async def promote_during() -> Load:
        level = max(LEVELS)
        async with _session(level) as session:
            loading = asyncio.create_task(
                _load(session, url, bodies, level, SWAP_SECONDS, versions=True)
            )
            await asyncio.sleep(SWAP_AFTER)
            await asyncio.to_thread(force_promote, params, target, "bench: hot swap under load")
            return await loading

    try:
        load = _run(promote_during())
    finally:
        force_promote(params, before, "bench: the champion back after the hot swap")
    seen = " → ".join(f"v{v}" for v in load.versions)
    note = f"{len(load.latencies)} requests at {max(LEVELS)} clients; versions answering {seen}"
    return [
        at_most("api", "hot swap under load: failed requests", load.failures, "requests", 0, note),
        at_least(
            "api",
            "hot swap: swapped once, never back",
            float(load.versions == [before, target]),
            "",
            1.0,
        ),
    ]


def _another_version(params: Params, champion: str) -> str:
    """A version to swap to: the newest other one registered, else the champion's files
    registered once more (a new version, same checksums)."""
    from tasks.registry.aliases import registry_client

    client, name = registry_client(params), params.registry.model_name
    others = [
        v for v in client.search_model_versions(f"name='{name}'") if str(v.version) != champion
    ]
    if others:
        return str(max(int(v.version) for v in others))
    current = client.get_model_version(name, champion)
    again = client.create_model_version(
        name, current.source, current.run_id, tags=dict(current.tags)
    )
    return str(again.version)


@contextlib.asynccontextmanager
async def _session(level: int):
    connector = aiohttp.TCPConnector(limit=level, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        yield session


async def _load(
    session: aiohttp.ClientSession,
    url: str,
    bodies: list[bytes],
    level: int,
    seconds: float,
    versions: bool = False,
) -> Load:
    """`level` clients, each sending the next body (cycled) as soon as its last answer came,
    for `seconds`; with `versions`, the answering model version is read from each reply."""
    load = Load()
    headers = {"content-type": "application/json"}
    started = time.perf_counter()
    count = len(bodies)

    async def client_loop(offset: int) -> None:
        sent_count = offset
        while (sent := time.perf_counter()) - started < seconds:
            body = bodies[sent_count % count]
            sent_count += level
            try:
                async with session.post(url, data=body, headers=headers) as reply:
                    payload = await reply.read()
                    ok = reply.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            load.latencies.append(time.perf_counter() - sent)
            load.failures += not ok
            if versions and ok:
                load.saw(json.loads(payload)["model_version"])

    await asyncio.gather(*(client_loop(i) for i in range(level)))
    load.wall = time.perf_counter() - started
    return load


def _rss(proc: subprocess.Popen) -> float:
    """Resident memory of a server process, bytes."""
    import psutil

    return float(psutil.Process(proc.pid).memory_info().rss)


def _tracking_uri(params: Params) -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI") or params.tracking.uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    return uri


def _bench_params(params_path: Path, work: Path) -> Path:
    """The project's params with the shadow off (the challenger would double the work of (a)
    and (b) but not of (c)) and the alias polled often (the swap lands within its phase)."""
    raw = yaml.safe_load(Path(params_path).read_text())
    raw["api"] = {**raw["api"], "shadow": False, "canary_share": 0.0, "poll_seconds": POLL_SECONDS}
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


def main(argv: list[str] | None = None) -> int:
    from tasks.core.runtime import go_offline, setup_logging

    parser = argparse.ArgumentParser(prog="python -m bench.bench_api", description=__doc__)
    parser.add_argument("params", nargs="?", default="params.yaml", type=Path)
    parser.add_argument("--sustain", type=float, default=SUSTAIN_SECONDS, metavar="SECONDS")
    args = parser.parse_args(argv)
    go_offline()
    setup_logging()
    log.info("bench api: no hot-swap phase here (it would move your @champion): `make bench`")
    try:
        rows = measure(
            load_params(args.params), args.params, Path("reports/bench/api"), args.sustain, False
        )
    except LooplineError as exc:
        log.error("bench api: %s", exc)
        return 1
    for row in rows:
        met = "" if row.met is None else ("met" if row.met else "MISSED")
        figure = (row.name, row.value, row.unit, row.target, met, row.note)
        log.info("%-40s %12.2f %-8s %-6s %-6s %s", *figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
