"""Stage `ingest`: raw source → labelled feature table, partitioned by event date, plus a summary.

Generic over datasets: which columns are ids, features, label source and event time all come
from the dataset description; only the raw joins live in tasks/data/sources.py.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tasks.core.categories import category_text
from tasks.core.config import COMPARISONS, PARAMS_FILE, DatasetConfig, IngestConfig
from tasks.core.config.volume import volume_by_month
from tasks.core.errors import IngestError
from tasks.core.columns import EVENT_DATE, renamed_hint
from tasks.core.io import fingerprint, write_metrics, write_partitioned
from tasks.data.sources import RawData, load_source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureTable:
    frame: pd.DataFrame
    summary: dict


def output_columns(dataset: DatasetConfig) -> list[str]:
    """Columns of the feature table, in order: ids, event time and date, features, label."""
    ids = [c for c in dataset.id_columns if c != dataset.event_time]
    return [*ids, dataset.event_time, EVENT_DATE, *dataset.features.names, dataset.target.name]


def build_feature_table(
    raw: RawData, dataset: DatasetConfig, params_file: Path = PARAMS_FILE
) -> FeatureTable:
    """Label, type and trim a raw table into the feature table. Pure: no I/O. `params_file` is
    the file the dataset section was read from, named when a column is missing."""
    table = raw.table
    needed = dict.fromkeys(
        [*dataset.id_columns, dataset.event_time, dataset.target.column, *dataset.features.names]
    )
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise IngestError(
            f"{raw.origin}: missing column(s) {missing} named in the dataset section of "
            f"{params_file}"
            f"{renamed_hint(missing, table.columns)}; "
            f"the source has {sorted(map(str, table.columns))[:30]}"
        )
    if table.empty:
        raise IngestError(f"{raw.origin}: source has a header but no rows")

    rule = dataset.target
    has_label = table[rule.column].notna()
    labelled = table.loc[has_label]
    try:
        label = COMPARISONS[rule.op](labelled[rule.column], rule.value)
    except TypeError:
        raise IngestError(
            f"{raw.origin}: column {rule.column!r} ({labelled[rule.column].dtype}) cannot be "
            f"compared with {rule.value!r} by dataset.target.op {rule.op!r}"
        ) from None

    out = pd.DataFrame(index=labelled.index)
    for col in dict.fromkeys(dataset.id_columns):
        out[col] = labelled[col]
    event_time = pd.to_datetime(labelled[dataset.event_time], errors="coerce")
    out[dataset.event_time] = event_time
    out[EVENT_DATE] = event_time.dt.strftime("%Y-%m-%d")
    for col in dataset.features.categorical:
        values = labelled[col]
        out[col] = category_text(values).where(values.notna(), None).astype(object)
    for col in dataset.features.numeric:
        values = labelled[col]
        # Only widen real numbers; a text column stays text so validation names its dtype.
        out[col] = values.astype("float64") if pd.api.types.is_numeric_dtype(values) else values
    out[rule.name] = label.astype("int8")

    unparsable = out[dataset.event_time].isna()
    if unparsable.all():
        raise IngestError(
            f"{raw.origin}: column {dataset.event_time!r} holds no parseable timestamps; "
            "set dataset.event_time to a date/time column"
        )
    if unparsable.any():
        log.warning(
            "%s: %d row(s) dropped, column %r does not parse as a date/time (counted in the "
            "ingest summary as dropped_unparseable_event_time)",
            raw.origin,
            int(unparsable.sum()),
            dataset.event_time,
        )
    out = out.loc[~unparsable, output_columns(dataset)].reset_index(drop=True)

    leaking = set(out.columns) & set(dataset.leakage_columns)
    if leaking:
        raise IngestError(f"{raw.origin}: leakage column(s) {sorted(leaking)} reached the output")

    summary = _summarize(
        raw,
        dataset,
        out,
        dropped_no_label=int((~has_label).sum()),
        dropped_bad_time=int(unparsable.sum()),
    )
    return FeatureTable(frame=out, summary=summary)


def _summarize(
    raw: RawData,
    dataset: DatasetConfig,
    out: pd.DataFrame,
    dropped_no_label: int,
    dropped_bad_time: int,
) -> dict:
    target = out[dataset.target.name]
    monthly = out.groupby(out[EVENT_DATE].str[:7])[dataset.target.name].mean()
    return {
        "dataset": dataset.name,
        "source": raw.origin,
        "rows_in": len(raw.table),
        "rows": len(out),
        "dropped_no_label": dropped_no_label,
        "dropped_unparseable_event_time": dropped_bad_time,
        "date_min": out[EVENT_DATE].min(),
        "date_max": out[EVENT_DATE].max(),
        "days": int(out[EVENT_DATE].nunique()),
        "positive_rate": round(float(target.mean()), 4),
        "positive_rate_by_month": {k: round(float(v), 4) for k, v in monthly.items()},
        # What the `auto` sizes of params are resolved from (tasks/core/config/volume.py).
        "volume_by_month": volume_by_month(out[EVENT_DATE], target),
        "join_coverage": raw.join_coverage,
        "columns": list(out.columns),
        "fingerprint": fingerprint(out),
    }


def run_ingest(dataset: DatasetConfig, cfg: IngestConfig, params_file: Path = PARAMS_FILE) -> dict:
    """The stage: read the source, build the table, write it and its summary atomically."""
    started = time.perf_counter()
    raw = load_source(dataset.source, params_file)
    table = build_feature_table(raw, dataset, params_file)
    write_partitioned(cfg.features_dir, table.frame, partition_col=EVENT_DATE)
    summary = {**table.summary, "duration_s": round(time.perf_counter() - started, 2)}
    write_metrics(cfg.summary_path, summary)
    log.info(
        "ingest: %d %s, %s..%s, positive rate %.3f → %s",
        summary["rows"],
        dataset.rows_word(summary["rows"]),
        summary["date_min"],
        summary["date_max"],
        summary["positive_rate"],
        cfg.features_dir,
    )
    return summary
