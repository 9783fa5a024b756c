"""The scoring workload: real feature rows without their label, replicated to a fixed count."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.core.config import Params
from tasks.model.nets import load_model
from tasks.serving.champion import Champion

VARIANTS = ("teacher", "student", "student_int8")


def folder(params: Params, name: str) -> Path:
    return {
        "teacher": params.train.model_dir,
        "student": params.distill.model_dir,
        "student_int8": params.distill.int8_dir,
    }[name]


def write_rows(params: Params, target: Path, rows: int) -> Path:
    """`rows` incoming-batch rows (the feature table minus label and partition), streamed to
    `target` a copy of the table at a time, so the 10M-row file never sits in memory."""
    table = pq.read_table(params.ingest.features_dir)
    unknown_then = [params.dataset.target.name, "event_date"]  # the label; the partition
    table = table.drop_columns([c for c in unknown_then if c in table.schema.names])
    with pq.ParquetWriter(target, table.schema) as writer:
        left = rows
        while left > 0:
            part = table.slice(0, min(left, table.num_rows))
            writer.write_table(part)
            left -= part.num_rows
    return target


def variant(params: Params, name: str) -> Champion:
    """A saved variant as the scorer sees a champion: network, featurizer, threshold."""
    model, featurizer = load_model(folder(params, name))
    metrics = params.evaluate.metrics_dir / f"{name}.json"
    threshold = json.loads(metrics.read_text()).get("threshold", 0.5) if metrics.exists() else 0.5
    return Champion(name, "bench", model, featurizer, float(threshold), run_id="")


def read_columns(params: Params, champion: Champion) -> list[str]:
    return [*params.dataset.id_columns, *champion.featurizer.columns]


def output_like(source: pa.Table, ids: list[str]) -> pa.Table:
    """A table the shape of a predictions file for `source`'s rows."""
    import numpy as np

    rows = source.num_rows
    return pa.table(
        {
            **{c: source.column(c) for c in ids},
            "score": np.zeros(rows, np.float32),
            "prediction": np.zeros(rows, np.int8),
        }
    )


def save_pyfunc(params: Params, name: str, source: Path, target: Path) -> Path:
    """The variant saved as the registry logs it (pyfunc model from code), for the common
    approach: `mlflow.pyfunc.load_model(target).predict(frame)`."""
    import mlflow
    import pandas as pd

    from tasks.registry.versions import pyfunc_spec

    if not target.exists():
        example = pd.read_parquet(source).head(5)
        mlflow.pyfunc.save_model(str(target), **pyfunc_spec(folder(params, name), example))
    return target
