"""`loopline api` started before its champion can load: it keeps trying, with backoff, answers
503 not ready meanwhile, and serves once the model's files are there."""

from __future__ import annotations

import shutil
import time

import httpx
from test_api import _stored_model, incoming, metric, records, running

RETRY = {"load_retry_seconds": 0.5, "load_retry_max_seconds": 1.0, "poll_seconds": 0.1}


def test_a_champion_that_cannot_load_at_start_is_retried_with_backoff(serving):
    params, row = serving, records(serving, incoming(serving).head(1))[0]
    stored = _stored_model(params, "1")
    away = stored.with_name(stored.name + ".away")
    stored.rename(away)  # the artifact store without the champion's files (not corrupt)
    try:
        with running(params, shadow=False, **RETRY) as url, httpx.Client(base_url=url) as client:
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
