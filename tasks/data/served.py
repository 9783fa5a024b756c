"""What was served on a day, nightly and online together: the readers of drift, live AUC and
lineage see `loopline api`'s traffic exactly as they see the nightly batches.

A day's nightly file (`D.parquet`) and its online part files (`online/D/part-*.parquet`) are
read as one table; the features of online rows sit in the incoming folder's online partition.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from tasks.core.config import Params
from tasks.core.io import parquet_rows
from tasks.core.layout import dated_files, day_file, online_days, online_parts


def day_sources(folder: Path, day: dt.date) -> list[Path]:
    """The day's nightly file (when there is one) and its online parts."""
    nightly = day_file(folder, day)
    return ([nightly] if nightly.exists() else []) + online_parts(folder, day)


def served_days(folder: Path) -> list[dt.date]:
    """Every day with a nightly file or online parts in `folder`, in order."""
    return sorted(set(dated_files(folder)) | set(online_days(folder)))


def has_rows(folder: Path, day: dt.date) -> bool:
    """Whether the day holds a row, nightly or online (a file's footer says)."""
    return any(parquet_rows(path) > 0 for path in day_sources(folder, day))


def read_day(folder: Path, day: dt.date, columns: list[str]) -> pd.DataFrame | None:
    """The day's rows of `columns`, nightly and online together; None when neither exists."""
    frames = [pd.read_parquet(path, columns=columns) for path in day_sources(folder, day)]
    frames = [f for f in frames if len(f)] or frames[:1]
    return pd.concat(frames, ignore_index=True) if frames else None


def read_scored(params: Params, day: dt.date, columns: list[str]) -> pd.DataFrame | None:
    """A day's predictions, nightly and online (None: nothing was scored that day)."""
    return read_day(params.score.predictions_dir, day, columns)


def read_served_features(params: Params, day: dt.date, columns: list[str]) -> pd.DataFrame:
    """The rows behind a day's predictions: the nightly batch and the online requests."""
    frame = read_day(params.score.incoming_dir, day, columns)
    return frame if frame is not None else pd.DataFrame(columns=columns)
