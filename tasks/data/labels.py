"""Labels: a scored day's outcomes, arriving later as `score.labels_dir/D.parquet`.

They feed the live AUC (a retrain trigger) and the count of new labelled rows (a retrain
blocker), so they are checked before either reads them. A file that cannot be read, or lacks
the id or label column, is an error naming the file and the column: monitoring on half a
delivery would be silently wrong. Rows with a null or repeated id, or a label other than 0/1,
are set aside with a reason; the rest count. Three cheap pandas rules rather than a Great
Expectations pass (≈1 s each), because every nightly run rereads a week of label files.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tasks.core.columns import REASON
from tasks.core.config import Params
from tasks.core.errors import DataSourceError
from tasks.core.io import read_table
from tasks.core.layout import day_paths

log = logging.getLogger(__name__)

LABEL_VALUES = [0, 1]


@dataclass(frozen=True)
class Labels:
    """One day's label file split: `valid` (ids + label, unique ids, 0/1) and `rejected`
    (the other rows, with a `reason`)."""

    path: Path
    valid: pd.DataFrame
    rejected: pd.DataFrame


def read_labels(params: Params, day: dt.date) -> Labels | None:
    """The day's labels, checked (None: none delivered yet)."""

    path = day_paths(params, day)["labels"]
    if not path.exists():
        return None
    ids, target = params.dataset.id_columns, params.dataset.target.name
    frame = read_table(path)
    missing = [c for c in [*ids, target] if c not in frame.columns]
    if missing:
        raise DataSourceError(
            f"{path}: missing column(s) {missing}; a labels file holds {[*ids, target]} "
            f"(it has {sorted(map(str, frame.columns))[:10]}); re-deliver it or move it away"
        )
    frame = frame[[*ids, target]].reset_index(drop=True)
    rules = {
        f"{', '.join(ids)} is null": frame[ids].isna().any(axis=1),
        f"{', '.join(ids)} is duplicated": frame.duplicated(ids, keep=False),
        f"{target} not in {{0, 1}}": ~frame[target].isin(LABEL_VALUES),
    }
    broken = pd.DataFrame(rules)
    bad = broken.any(axis=1)
    reasons = ["; ".join(broken.columns[row]) for row in broken[bad].to_numpy()]
    if bad.any():
        log.warning("%s: %d of %d label row(s) set aside", path, int(bad.sum()), len(frame))
    valid = frame[~bad].astype({target: "int8"}).reset_index(drop=True)
    return Labels(path, valid, frame[bad].assign(**{REASON: reasons}).reset_index(drop=True))


def join_scored(labels: Labels, scored: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    """Valid labels joined to the day's scores on the ids; ids whose types differ between the
    two files are an error naming the column (pandas would refuse or match nothing)."""
    for col in ids:
        left, right = labels.valid[col].dtype, scored[col].dtype
        if left.kind != right.kind:
            raise DataSourceError(
                f"{labels.path}: column {col!r} is {left} but {right} in the predictions; "
                "re-deliver the labels with the ids as scored"
            )
    return scored.merge(labels.valid, on=ids, how="inner")
