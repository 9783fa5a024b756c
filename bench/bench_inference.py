"""Nightly scoring and drift: the champion end to end vs its raw forward pass, same run.

- ours: `score_frame` on raw rows (featurize + forward, chunked) — what the inference flow does;
- raw limit: the same network's forward pass on tensors prepared beforehand;
- common approach: `mlflow.pyfunc.load_model(...).predict(frame)` on the same rows.
Drift: Evidently on a 7-day window (as the nightly check runs it) against the reference.
"""

from __future__ import annotations

import time

import pandas as pd

from bench.common import Row, best_of
from tasks.config import Params
from tasks.io import read_partitions

ROWS = 200_000


def run(params: Params) -> list[Row]:
    import mlflow
    import torch

    from tasks.drift import feature_drift, load_reference
    from tasks.score import resolve_champion, score_frame

    champion = resolve_champion(params)
    days = read_partitions(params.ingest.features_dir, "event_date", "2013-04-01", "2013-04-30")
    frame = pd.concat([days] * (ROWS // len(days) + 1), ignore_index=True).head(ROWS)
    chunk = params.score.chunk_rows

    ours = best_of(lambda: score_frame(champion, frame, chunk), repeat=3)
    encoded = champion.featurizer.transform(frame)
    cats, nums = torch.from_numpy(encoded.categorical), torch.from_numpy(encoded.numeric)

    @torch.inference_mode()
    def forward() -> None:
        for i in range(0, ROWS, chunk):
            torch.sigmoid(champion.model(cats[i : i + chunk], nums[i : i + chunk]))

    raw = best_of(forward, repeat=3)
    served = mlflow.pyfunc.load_model(f"models:/{champion.name}/{champion.version}")
    features = frame[params.dataset.features.names]
    common = best_of(lambda: served.predict(features), repeat=1)

    reference = load_reference(champion.run_id)
    week = days[days["event_date"] <= "2013-04-07"].assign(score=0.5)
    feature_drift(params, reference, week)  # warm
    started = time.perf_counter()
    feature_drift(params, reference, week)
    drift = time.perf_counter() - started
    return [
        Row("inference", f"ours (featurize + forward), {ROWS:,} rows", ROWS / ours, "rows/s"),
        Row("inference", "raw limit (forward on prepared tensors)", ROWS / raw, "rows/s"),
        Row("inference", "common (mlflow pyfunc predict)", ROWS / common, "rows/s"),
        Row(
            "inference",
            "ours / raw limit",
            raw / ours,
            "share",
            "featurizing raw rows is the rest of the time",
        ),
        Row("inference", "ours / common", common / ours, "x", "speed-up over pyfunc"),
        Row("drift", f"Evidently, 7-day window ({len(week):,} rows)", drift, "s"),
    ]
