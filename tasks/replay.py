"""The simulation clock: replay days of the real data as nightly batches through the loop.

For each day it writes the incoming batch and the previous day's labels, runs the inference
flow (which may retrain), and scores the same rows with the first model as a static baseline,
so the loop's value can be read per month: AUC of the loop vs the static model on the same days.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import pandas as pd

from tasks.config import Params
from tasks.io import write_json
from tasks.metrics import classification_metrics
from tasks.score import day_paths, resolve_champion, score_frame, write_day_batch

log = logging.getLogger(__name__)


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def replay(
    params: Params,
    start: dt.date,
    end: dt.date,
    run_day: Callable[[dt.date], dict],
    progress: Any = None,
) -> dict[str, Any]:
    """Drive `run_day` (the inference flow) over [start, end]; returns the per-month table."""
    static = resolve_champion(params)  # the model the loop started with, never replaced here
    ids = params.dataset.id_columns
    scored, days = [], []
    for day in days_between(start, end):
        write_day_batch(params, day)
        result = run_day(day)
        paths = day_paths(params, day)
        served = pd.read_parquet(paths["predictions"], columns=[*ids, "score", "model_version"])
        rows = pd.read_parquet(paths["incoming"]).merge(served[ids], on=ids)
        static_scores, _ = score_frame(static, rows, params.score.chunk_rows)
        scored.append(
            served.merge(rows[ids].assign(static_score=static_scores), on=ids).assign(
                date=day.isoformat()
            )
        )
        decision = result.get("retrain_decision") or {}
        days.append(
            {
                "date": day.isoformat(),
                "drift_share": result["drift"].get("drift_share"),
                "retrain": bool(decision.get("retrain")),
                "reasons": decision.get("reasons", []),
                "model_version": result["model_version"],
            }
        )
        if progress is not None:
            progress(day, result)
    write_day_batch_labels_for_last(params, end)
    table = monthly_table(params, pd.concat(scored, ignore_index=True), pd.DataFrame(days))
    summary = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "static_version": static.version,
        "months": table,
        "days": days,
    }
    write_json(params.drift.report_dir.parent / "replay" / "summary.json", summary)
    return summary


def write_day_batch_labels_for_last(params: Params, end: dt.date) -> None:
    """The last day's labels arrive the morning after: write them so its AUC can be read."""
    from tasks.ingest import EVENT_DATE
    from tasks.io import read_partitions, write_parquet

    rows = read_partitions(params.ingest.features_dir, EVENT_DATE, end.isoformat(), end.isoformat())
    if not rows.empty:
        write_parquet(
            day_paths(params, end)["labels"],
            rows[[*params.dataset.id_columns, params.dataset.target.name]],
        )


def monthly_table(params: Params, scored: pd.DataFrame, days: pd.DataFrame) -> list[dict]:
    """Per month: the loop's AUC and the static model's on the same labelled rows."""
    ids, target = params.dataset.id_columns, params.dataset.target.name
    labels = pd.concat(
        [
            pd.read_parquet(day_paths(params, dt.date.fromisoformat(d))["labels"])
            for d in sorted(scored["date"].unique())
            if day_paths(params, dt.date.fromisoformat(d))["labels"].exists()
        ],
        ignore_index=True,
    )
    joined = scored.merge(labels, on=ids, how="inner")
    joined["month"] = joined["date"].str[:7]
    days["month"] = days["date"].str[:7]
    table = []
    for month, part in joined.groupby("month"):
        month_days = days[days["month"] == month]
        y = part[target].to_numpy()
        both = y.min() != y.max()
        table.append(
            {
                "month": month,
                "rows": len(part),
                "loop_auc": classification_metrics(y, part["score"].to_numpy(), 0.5, 10)["roc_auc"]
                if both
                else None,
                "static_auc": classification_metrics(y, part["static_score"].to_numpy(), 0.5, 10)[
                    "roc_auc"
                ]
                if both
                else None,
                "mean_drift_share": float(month_days["drift_share"].mean()),
                "retrains": int(month_days["retrain"].sum()),
                "versions": sorted(set(part["model_version"])),
            }
        )
    return table
