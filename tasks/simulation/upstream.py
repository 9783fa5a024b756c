"""The simulation's upstream job: as the clock advances, each day's batch and labels appear.

In production another system writes `score.incoming_dir/D.parquet` (the day's rows, no label)
and, later, `score.labels_dir/D.parquet` (their outcomes). The replay plays that part from the
feature table, so the loop meets exactly the files it would meet in production.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from tasks.core.columns import EVENT_DATE
from tasks.core.config import Params
from tasks.core.errors import LooplineError
from tasks.core.io import read_partitions, write_parquet
from tasks.core.layout import day_paths


def _rows(params: Params, first: dt.date, last: dt.date) -> pd.DataFrame:
    return read_partitions(
        params.ingest.features_dir, EVENT_DATE, first.isoformat(), last.isoformat()
    )


def _write_labels(params: Params, day: dt.date, rows: pd.DataFrame) -> None:
    if not rows.empty:
        labels = rows[[*params.dataset.id_columns, params.dataset.target.name]]
        write_parquet(day_paths(params, day)["labels"], labels)


def _check_covered(params: Params, day: dt.date) -> None:
    """A day outside the feature table's dates is a table that was never ingested that far, not
    a day without data: say so rather than replay weeks of nothing."""
    folder = params.ingest.features_dir
    days = sorted(p.name.split("=", 1)[1] for p in folder.glob(f"{EVENT_DATE}=*"))
    if not days or not days[0] <= day.isoformat() <= days[-1]:
        covers = f"covers {days[0]}..{days[-1]}" if days else "holds no days"
        raise LooplineError(
            f"{folder}: no rows for {day}: the feature table {covers}; "
            "run `loopline ingest` on a source that covers it"
        )


def write_day_batch(params: Params, day: dt.date) -> dict[str, Path]:
    """`day`'s incoming batch (features, no label) and the labels of the day before, which have
    arrived by then. Both from the feature table. A day without rows inside the table's dates
    (a weekend, a holiday, an outage) gets a header-only batch: the upstream's way of saying
    "nothing today", which the nightly run scores as a day without data."""
    _check_covered(params, day)
    paths = day_paths(params, day)
    yesterday = day - dt.timedelta(days=1)
    rows = _rows(params, yesterday, day)
    today = rows[rows[EVENT_DATE] == day.isoformat()]
    write_parquet(paths["incoming"], today.drop(columns=[params.dataset.target.name, EVENT_DATE]))
    _write_labels(params, yesterday, rows[rows[EVENT_DATE] == yesterday.isoformat()])
    return paths


def write_last_labels(params: Params, end: dt.date) -> None:
    """The last day's labels arrive the morning after: write them so its AUC can be read."""
    _write_labels(params, end, _rows(params, end, end))
