"""`loopline api` on a real uvicorn server (a free loopback port, in a thread) with a real httpx
client, serving the champion of the trained slice: scores equal the batch path's, requests are
batched, promotions swap without an error, a corrupt version never serves, shadow and canary
are accounted for, bad input is the client's 4xx, and online traffic reaches drift and lineage."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
from helpers import DAY, register_again, running_api

from tasks.core.layout import day_paths, online_parts
from tasks.registry.aliases import force_promote, registry_client
from tasks.serving.champion import resolve_champion, score_frame
from tasks.serving.online.canary import to_challenger
from tasks.simulation.upstream import write_day_batch


def records(params, rows: pd.DataFrame) -> list[dict]:
    """Rows as a client sends them: the id, event time and feature columns, JSON-typed."""
    dataset = params.dataset
    columns = [*dataset.id_columns, dataset.event_time, *dataset.features.names]
    return json.loads(rows[columns].to_json(orient="records", date_format="iso"))


def incoming(params) -> pd.DataFrame:
    return pd.read_parquet(day_paths(params, DAY)["incoming"])


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = (
        rf"^{re.escape(name)}(\{{{re.escape(wanted)}\}})? (\S+)$" if wanted else rf"^{name} (\S+)$"
    )
    for line in text.splitlines():
        if match := re.match(pattern, line):
            return float(match.groups()[-1])
    return 0.0


def test_scores_equal_the_batch_path_and_reach_drift_and_lineage(serving):
    from flows.cli.render import lineage_text
    from tasks.monitoring.drift import current_window, live_auc
    from tasks.registry.lineage import lineage

    params, rows = serving, incoming(serving).head(300)
    champion = resolve_champion(params)
    # Same rows in the same batch: the int8 variant quantizes activations per batch, so a row's
    # score depends (≈1e-3) on the rows scored with it, online as in the nightly batches.
    chunks = [rows.head(1), *(rows.iloc[start : start + 100] for start in range(0, 300, 100))]
    expected = [
        score_frame(champion, chunk, params.score.chunk_rows, where="rows")[0] for chunk in chunks
    ]
    with running_api(params, shadow=False) as url, httpx.Client(base_url=url) as client:
        assert client.get("/healthz").json() == {"status": "alive"}
        assert client.get("/readyz").json()["model_version"] == champion.version
        replies = [client.post("/v1/predict", json=records(params, chunk)) for chunk in chunks]
        model = client.get("/v1/model").json()
    assert {reply.status_code for reply in replies} == {200}
    for reply, scores in zip(replies, expected, strict=True):
        got = [row["probability"] for row in reply.json()["predictions"]]
        np.testing.assert_allclose(got, scores, atol=1e-6)
    answered = [row for reply in replies[1:] for row in reply.json()["predictions"]]
    assert [row["flight_id"] for row in answered] == rows["flight_id"].tolist()
    assert {row["model_version"] for row in answered} == {champion.version}
    assert model["model_version"] == champion.version and model["window"] == champion.window
    assert model["decision"] == "promoted" and model["run_id"] == champion.run_id

    # The online partition: the nightly predictions' columns, read by drift, live AUC, lineage.
    parts = online_parts(params.score.predictions_dir, DAY)
    assert parts and not day_paths(params, DAY)["predictions"].exists()
    online = pd.concat([pd.read_parquet(p) for p in parts])
    assert list(online.columns) == [
        "flight_id",
        params.dataset.event_time,
        "score",
        "prediction",
        "model_name",
        "model_version",
        "scored_at",
    ]
    assert len(online) == 301
    window = current_window(params, DAY)
    assert len(window) == 301  # each scored row once with its features (one id sent twice)
    chain = lineage(params, DAY)
    assert chain["model_version"] == champion.version and chain["versions"] == [champion.version]
    assert chain["rows"] == chain["online_rows"] == 301
    assert "(301 rows, 301 online, scored" in lineage_text(chain)
    write_day_batch(params, DAY + dt.timedelta(days=1))  # the labels of DAY arrive
    assert live_auc(params, DAY + dt.timedelta(days=1))["labelled_rows"] == 301


def test_concurrent_requests_are_scored_in_batches(serving):
    params, rows = serving, records(serving, incoming(serving).head(64))

    async def burst(url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=url) as client:
            replies = await asyncio.gather(*(client.post("/v1/predict", json=r) for r in rows))
            return [r.status_code for r in replies]

    with running_api(params, shadow=False, max_wait_ms=50.0) as url:
        assert asyncio.run(burst(url)) == [200] * len(rows)
        text = httpx.get(f"{url}/metrics").text
    batches = metric(text, "loopline_api_batch_rows_count", role="served")
    assert metric(text, "loopline_api_batch_rows_sum", role="served") == len(rows)
    assert 1 <= batches < len(rows) / 4  # 64 one-row requests, far fewer forward passes
    assert metric(text, "loopline_api_requests_total", path="/v1/predict", status="200") == 64


def _stream(url: str, rows: list[dict], stop: threading.Event, seen: list) -> None:
    with httpx.Client(base_url=url) as client:
        while not stop.is_set():
            for row in rows:
                reply = client.post("/v1/predict", json=row)
                seen.append((reply.status_code, reply.json().get("model_version")))


def test_a_promotion_during_a_stream_of_requests_swaps_without_an_error(serving):
    params, rows = serving, records(serving, incoming(serving).head(20))
    new = register_again(params)
    seen: list[tuple[int, str]] = []
    stop = threading.Event()
    with running_api(params, shadow=False) as url:
        streamer = threading.Thread(target=_stream, args=(url, rows, stop, seen))
        streamer.start()
        time.sleep(1.0)
        force_promote(params, new, "test: promotion under load")
        deadline = time.monotonic() + 30
        while not any(v == new for _, v in seen[-5:]) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        stop.set()
        streamer.join(30)
        assert httpx.get(f"{url}/readyz").json()["model_version"] == new
    assert {code for code, _ in seen} == {200}
    versions = [v for _, v in seen]
    assert versions[0] == "1" and versions[-1] == new
    swap = versions.index(new)
    assert set(versions[swap:]) == {new}  # once swapped, never back


def _stored_model(params, version: str) -> Path:
    tags = registry_client(params).get_model_version(params.registry.model_name, version).tags
    model_id = tags["loopline.model_uri"].removeprefix("models:/")
    return Path(mlflow.get_logged_model(model_id).artifact_location.removeprefix("file://"))


def test_a_corrupt_new_version_keeps_the_old_one_serving(serving):
    params, row = serving, records(serving, incoming(serving).head(1))[0]
    bad = register_again(params)
    (weights,) = _stored_model(params, bad).rglob("weights.safetensors")
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with running_api(params, shadow=False) as url, httpx.Client(base_url=url) as client:
        force_promote(params, bad, "test: a corrupt version")
        deadline = time.monotonic() + 30
        while client.get("/readyz").json()["load_error"] is None:
            assert time.monotonic() < deadline, "the failed load was never reported"
            time.sleep(0.1)
        ready = client.get("/readyz")
        reply = client.post("/v1/predict", json=row)
        text = client.get("/metrics").text
    assert ready.status_code == 200 and ready.json()["model_version"] == "1"
    assert f"v{bad} not loaded" in ready.json()["load_error"]
    assert "does not match the checksum" in ready.json()["load_error"]
    assert reply.status_code == 200 and reply.json()["model_version"] == "1"
    assert metric(text, "loopline_api_load_failures_total", alias="champion") >= 1


def test_shadow_and_canary_are_accounted_with_the_version_that_answered(serving):
    params, frame = serving, incoming(serving).head(200)
    challenger = register_again(params)
    registry_client(params).set_registered_model_alias(
        params.registry.model_name, "challenger", challenger
    )
    with running_api(params, shadow=True, canary_share=0.3) as url, httpx.Client(base_url=url) as c:
        first = c.post("/v1/predict", json=records(params, frame)).json()["predictions"]
        again = c.post("/v1/predict", json=records(params, frame)).json()["predictions"]
        deadline = time.monotonic() + 30
        while (
            metric(
                c.get("/metrics").text, "loopline_api_rows_total", role="shadow", version=challenger
            )
            == 0
        ):
            assert time.monotonic() < deadline, "the shadow never scored"
            time.sleep(0.1)
        text = c.get("/metrics").text
    canary = np.array(to_challenger(records(params, frame), params.dataset.id_columns, 0.3))
    versions = np.array([row["model_version"] for row in first])
    assert (versions == np.where(canary, challenger, "1")).all()
    assert [r["model_version"] for r in again] == list(versions)  # sticky
    assert 20 < canary.sum() < 100
    assert (
        metric(text, "loopline_api_rows_total", role="canary", version=challenger)
        == 2 * canary.sum()
    )
    assert (
        metric(text, "loopline_api_rows_total", role="served", version="1") == 2 * (~canary).sum()
    )
    shadow = pd.concat(pd.read_parquet(p) for p in online_parts(params.score.shadow_dir, DAY))
    assert len(shadow) == 2 * (~canary).sum() and set(shadow["model_version"]) == {challenger}
    served = pd.concat(pd.read_parquet(p) for p in online_parts(params.score.predictions_dir, DAY))
    assert served.groupby("model_version").size().to_dict() == {
        "1": 2 * (~canary).sum(),
        challenger: 2 * canary.sum(),
    }


def _row(params) -> dict:
    return records(params, incoming(params).head(1))[0]


BAD = {
    "malformed JSON": (lambda p: b'{"flight_id": 1,', 400, "malformed JSON"),
    "not a record": (lambda p: b"[1, 2]", 422, "expected a JSON object"),
    "empty list": (lambda p: b"[]", 422, "non-empty list"),
    "oversized body": (lambda p: b"[" + b" " * 3000 + b"]", 413, "api.max_body_bytes"),
    "too many rows": (lambda p: json.dumps([_row(p)] * 3).encode(), 413, "api.max_request_rows"),
    "missing column": (
        lambda p: json.dumps({k: v for k, v in _row(p).items() if k != "carrier"}).encode(),
        422,
        "missing column(s) carrier",
    ),
    "wrong type": (
        lambda p: json.dumps({**_row(p), "distance": "far"}).encode(),
        422,
        "distance: expected a number or null, got 'far'",
    ),
    "bad event time": (
        lambda p: json.dumps({**_row(p), "sched_dep_local": "soon"}).encode(),
        422,
        "expected an ISO 8601 date-time",
    ),
    "breaks a rule": (
        lambda p: json.dumps({**_row(p), "origin": "XXX"}).encode(),
        422,
        "breaks the contract: origin not in",
    ),
}


def test_each_bad_input_is_a_4xx_with_one_line_and_the_server_keeps_serving(serving):
    params = serving
    good = _row(params)
    with (
        running_api(params, shadow=False, max_body_bytes=2048, max_request_rows=2) as url,
        httpx.Client(base_url=url) as client,
    ):
        for case, (body, status, message) in BAD.items():
            reply = client.post(
                "/v1/predict", content=body(params), headers={"content-type": "application/json"}
            )
            assert reply.status_code == status, case
            text = json.dumps(reply.json())
            assert message in text, (case, text)
            assert "Traceback" not in text and 'File "' not in text
            assert client.post("/v1/predict", json=good).status_code == 200, case
        # A bad row beside good ones: it alone is refused, with the rule; the others are scored.
        mixed = [good, {**good, "flight_id": -1, "origin": "XXX"}]
        reply = client.post("/v1/predict", json=mixed)
    assert reply.status_code == 200
    ok, refused = reply.json()["predictions"]
    assert ok["status"] == 200 and "probability" in ok
    assert refused == {
        "flight_id": -1,
        "status": 422,
        "error": "breaks the contract: origin not in ['EWR', 'JFK', 'LGA']",
    }


def test_a_full_queue_is_a_503_with_retry_after_and_the_rest_are_served(serving):
    params, rows = serving, records(serving, incoming(serving).head(64))

    async def burst(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url) as client:
            return await asyncio.gather(*(client.post("/v1/predict", json=r) for r in rows))

    with running_api(params, shadow=False, max_queue_requests=1, max_wait_ms=50.0) as url:
        replies = asyncio.run(burst(url))
        after = httpx.post(f"{url}/v1/predict", json=rows[0])
    busy = [r for r in replies if r.status_code == 503]
    assert busy and {r.status_code for r in replies} == {200, 503}
    assert {r.headers["retry-after"] for r in busy} == {"1"}
    assert "api.max_queue_requests" in busy[0].json()["error"]
    assert after.status_code == 200


def test_the_cli_serves_until_interrupted_and_writes_what_it_scored(serving):
    import signal

    from helpers import spawn_cli

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = spawn_cli("api", "--port", str(port), cwd=Path.cwd())
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None and time.monotonic() < deadline, server.stderr.read()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            time.sleep(0.2)
        reply = httpx.post(f"{url}/v1/predict", json=_row(serving))
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=60)
    assert reply.status_code == 200 and reply.json()["model_version"] == "1"
    assert server.returncode == 0, err
    assert "Traceback" not in err
    (part,) = online_parts(serving.score.predictions_dir, DAY)  # flushed on the way out
    assert pd.read_parquet(part)["flight_id"].tolist() == [_row(serving)["flight_id"]]


# A champion that cannot load at start: kept trying with backoff, 503 not ready meanwhile.
RETRY = {"load_retry_seconds": 0.5, "load_retry_max_seconds": 1.0, "poll_seconds": 0.1}


def test_a_champion_that_cannot_load_at_start_is_retried_with_backoff(serving):
    params, row = serving, records(serving, incoming(serving).head(1))[0]
    stored = _stored_model(params, "1")
    away = stored.with_name(stored.name + ".away")
    stored.rename(away)  # the artifact store without the champion's files (not corrupt)
    try:
        with (
            running_api(params, shadow=False, **RETRY) as url,
            httpx.Client(base_url=url) as client,
        ):
            ready = client.get("/readyz")
            refused = client.post("/v1/predict", json=row)
            time.sleep(3.0)  # ≈30 polls; with the backoff ≈4 tries
            tries = metric(
                client.get("/metrics").text, "loopline_api_load_failures_total", alias="champion"
            )
            shutil.move(away, stored)
            deadline = time.monotonic() + 30
            while client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "the champion was never loaded"
                time.sleep(0.1)
            served = client.post("/v1/predict", json=row)
    finally:
        if away.exists():
            shutil.move(away, stored)
    assert ready.status_code == 503 and "v1 not loaded" in ready.json()["reason"]
    assert refused.status_code == 503 and refused.headers["retry-after"]
    assert 2 <= tries <= 7, f"{tries} tries in 3 s"
    assert served.status_code == 200 and served.json()["model_version"] == "1"
