"""The simulation's upstream job: as the clock advances, each day's batch and labels appear.

In production another system writes `score.incoming_dir/D.parquet` (the day's rows, no label)
and, later, `score.labels_dir/D.parquet` (their outcomes). The replay plays that part from the
feature table, so the loop meets exactly the files it would meet in production.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from tasks.core.config import Params
from tasks.core.errors import LooplineError
from tasks.core.io import read_partitions, write_parquet
from tasks.core.layout import EVENT_DATE, day_paths


def _rows(params: Params, first: dt.date, last: dt.date) -> pd.DataFrame:
    return read_partitions(
        params.ingest.features_dir, EVENT_DATE, first.isoformat(), last.isoformat()
    )


def _write_labels(params: Params, day: dt.date, rows: pd.DataFrame) -> None:
    if not rows.empty:
        labels = rows[[*params.dataset.id_columns, params.dataset.target.name]]
        write_parquet(day_paths(params, day)["labels"], labels)


def write_day_batch(params: Params, day: dt.date) -> dict[str, Path]:
    """`day`'s incoming batch (features, no label) and the labels of the day before, which have
    arrived by then. Both from the feature table."""
    paths = day_paths(params, day)
    yesterday = day - dt.timedelta(days=1)
    rows = _rows(params, yesterday, day)
    today = rows[rows[EVENT_DATE] == day.isoformat()]
    if today.empty:
        raise LooplineError(
            f"{params.ingest.features_dir}: no rows for {day}; run `loopline ingest`"
        )
    write_parquet(paths["incoming"], today.drop(columns=[params.dataset.target.name, EVENT_DATE]))
    _write_labels(params, yesterday, rows[rows[EVENT_DATE] == yesterday.isoformat()])
    return paths


def write_last_labels(params: Params, end: dt.date) -> None:
    """The last day's labels arrive the morning after: write them so its AUC can be read."""
    _write_labels(params, end, _rows(params, end, end))
