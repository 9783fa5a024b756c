"""Lineage of a day's predictions: file → model version → MLflow run → data and code."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tasks.core import tags as tag
from tasks.core.columns import MODEL_NAME, MODEL_VERSION, SCORED_AT
from tasks.core.config import Params
from tasks.core.errors import LooplineError
from tasks.core.io import parquet_rows
from tasks.core.layout import day_paths, online_parts
from tasks.data.served import read_scored
from tasks.registry import tracking


def lineage(params: Params, day: dt.date) -> dict[str, Any]:

    path = day_paths(params, day)["predictions"]
    predictions = read_scored(params, day, [MODEL_NAME, MODEL_VERSION, SCORED_AT])
    if predictions is None:
        raise LooplineError(f"{path}: no predictions for {day}; run `loopline score --date {day}`")
    if predictions.empty:
        raise LooplineError(
            f"{path}: no {params.dataset.plural_noun} on {day} (a day without data): "
            "nothing was scored, so nothing to trace"
        )
    name = str(predictions[MODEL_NAME].iloc[0])
    version = str(predictions[MODEL_VERSION].iloc[0])
    client = tracking.client(params.tracking)
    details = client.get_model_version(name, version)
    run = client.get_run(details.run_id)
    tags = {**run.data.tags, **details.tags}
    return {
        "date": day.isoformat(),
        "predictions": str(path),
        "rows": len(predictions),
        "online_rows": sum(
            parquet_rows(p) for p in online_parts(params.score.predictions_dir, day)
        ),
        "versions": sorted(predictions[MODEL_VERSION].astype(str).unique(), key=int),
        "scored_at": str(predictions["scored_at"].max()),
        "model_name": name,
        "model_version": version,
        "variant": tags.get(tag.VARIANT),
        "run_id": details.run_id,
        "parent_run_id": tags.get("mlflow.parentRunId"),
        "teacher_version": tags.get(tag.TEACHER_VERSION),
        "git_commit": tags.get(tag.GIT_COMMIT),
        "params_hash": tags.get(tag.PARAMS_HASH),
        "data_fingerprint": tags.get(tag.DATA_FINGERPRINT),
        "training_window": tags.get(tag.WINDOW),
        "weights_sha256": tags.get(tag.WEIGHTS_SHA256),
    }
