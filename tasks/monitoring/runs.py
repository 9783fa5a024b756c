"""The monitoring experiment in MLflow: one run per champion version, holding each scored day's
drift metrics, live AUC, scoring cost and retrain decision as time series.

Each day's value is logged at step = days since 1970-01-01 (`day_step`) with the batch date as
its timestamp, so MLflow's charts draw one line over the days a version served (x-axis "Step"
counts days, "Time (wall)" shows the dates), and comparing the runs of successive champions
shows where one took over from the other. A rerun of a day logs that day's point again.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.core import tags as tag
from tasks.core.config import Params
from tasks.core.layout import day_paths
from tasks.registry import tracking

EPOCH = dt.date(1970, 1, 1)  # step 0 of the monitoring metrics: a step is a day


def day_step(date: str | dt.date) -> int:
    """The metric step of a batch date: days since `EPOCH` (2013-05-16 is 15841)."""
    return (dt.date.fromisoformat(str(date)) - EPOCH).days


def day_timestamp(date: str | dt.date) -> int:
    """The metric timestamp of a batch date: its midnight UTC, in milliseconds."""
    day = dt.date.fromisoformat(str(date))
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


def monitored(params: Params, model_version: str) -> str:
    """The value of `loopline.monitored` on a version's monitoring run: `flight-delay/3`."""
    return f"{params.registry.model_name}/{model_version}"


def monitoring_run_id(params: Params, date: str, model_version: str | None = None) -> str | None:
    """The monitoring run holding `date`: the run of the version that scored it (read from the
    day's predictions when not given); None before that version's first check."""
    version = model_version or _scored_by(params, date)
    if version is None:
        return None
    return _find(params, version)


def _scored_by(params: Params, date: str) -> str | None:
    path = day_paths(params, dt.date.fromisoformat(date))["predictions"]
    if not path.exists():
        return None
    versions = pd.read_parquet(path, columns=["model_version"])["model_version"]
    return str(versions.iloc[0]) if len(versions) else None


def _find(params: Params, version: str) -> str | None:
    import mlflow

    tracking.configure(params.tracking)
    experiment = tracking.use_experiment(params.tracking, params.drift.experiment)
    try:
        runs = mlflow.search_runs(
            [experiment.experiment_id],
            f"tags.`{tag.MONITORED}` = '{monitored(params, version)}'",
            order_by=["attributes.start_time ASC"],
            max_results=1,
            output_format="list",
        )
    finally:
        mlflow.set_experiment(params.tracking.experiment)
    return runs[0].info.run_id if runs else None


def _run_of(params: Params, version: str) -> str:
    """The monitoring run of `version`, created at its first check. Two processes creating it
    at once converge on the older run; the younger deletes its own."""
    existing = _find(params, version)
    if existing is not None:
        return existing
    client = tracking.client(params.tracking)
    experiment = tracking.use_experiment(params.tracking, params.drift.experiment)
    try:
        run = client.create_run(
            experiment.experiment_id,
            tags={
                tag.MONITORED: monitored(params, version),
                tag.REGISTERED_MODEL: params.registry.model_name,
                tag.MODEL_VERSION: version,
                tracking.NOTE: f"Nightly monitoring of {params.registry.model_name} "
                f"v{version} while it served: one point a day (step = days since {EPOCH}).",
            },
            run_name=f"monitor-{params.registry.model_name}-v{version}",
        )
    finally:
        tracking.use_experiment(params.tracking, params.tracking.experiment)
    oldest = _find(params, version)
    if oldest != run.info.run_id:
        client.delete_run(run.info.run_id)
    return oldest or run.info.run_id


def _log_day(
    params: Params,
    run_id: str,
    date: str,
    metrics: dict[str, Any],
    tags: dict[str, str] | None = None,
) -> None:
    """`metrics` (finite numbers only) at the day's step and timestamp, `tags` beside them; the
    run's end time moves to now, so it spans every day it has logged."""
    import math

    from mlflow.entities import Metric, RunTag

    step, stamp = day_step(date), day_timestamp(date)
    values = [
        Metric(key, float(value), stamp, step)
        for key, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ]
    client = tracking.client(params.tracking)
    run_tags = [RunTag(tag.DATE, date), *(RunTag(k, v) for k, v in (tags or {}).items())]
    client.log_batch(run_id, metrics=values, tags=run_tags)
    client.set_terminated(run_id, "FINISHED")


def log_scoring_cost(params: Params, date: str, cost: dict[str, Any]) -> None:
    """A scoring run's cost, on the day of `date` of the monitoring run of the version that
    scored it (nothing when no row of `date` was scored)."""
    version = _scored_by(params, date)
    if version is None:
        return
    _log_day(
        params,
        _run_of(params, version),
        date,
        {
            "cost_scoring": cost["cost"],
            "cost_per_million": cost["cost_per_million"],
            "scoring_cpu_s": cost["cpu_s"],
            "scoring_wall_s": cost["wall_s"],
            "scoring_cpu_s_per_million": cost["cpu_s_per_million"],
            "scoring_rows": cost["rows"],
        },
    )


def log_monitoring(params: Params, summary: dict[str, Any]) -> None:
    """The drift check of a day on its version's monitoring run, with the retrain thresholds
    it is judged against (drawn beside the values); its report follows with the decision."""
    date = summary["date"]
    run_id = _run_of(params, summary["model_version"])
    cfg = params.retrain
    metrics = {
        "drift_share": summary["drift_share"],
        "drifted_columns": summary["drifted_columns"],
        "prediction_drift": summary["prediction_drift"].get("score", 0.0),
        "drift_share_threshold": cfg.max_drift_share,
        "prediction_drift_threshold": cfg.max_prediction_drift,
        "auc_drop_threshold": cfg.max_auc_drop,
    }
    metrics |= {
        f"drift_{c}": v["score"] for c, v in summary["columns"].items() if v["score"] is not None
    }
    if summary["live_auc"] is not None:
        metrics["live_auc"] = summary["live_auc"]
    if summary.get("auc_drop") is not None:
        metrics["auc_drop"] = summary["auc_drop"]
    _log_day(params, run_id, date, metrics)


def log_decision(
    params: Params, decision: dict[str, Any], model_version: str, report: Path
) -> None:
    """The retrain decision of a day: `retrain` 0/1 at the day's step, its reasons as a tag
    (the latest) and as `decisions/D.json` (every day's), and the day's drift report (which
    now carries the decision) under `drift/`."""
    date = decision["date"]
    run_id = _run_of(params, model_version)
    reasons = "; ".join(decision["reasons"]) or "no trigger"
    _log_day(
        params,
        run_id,
        date,
        {"retrain": int(decision["retrain"]), "retrain_triggers": len(decision["triggers"])},
        {tag.RETRAIN_REASONS: f"{date}: {reasons}"[:5000]},
    )
    client = tracking.client(params.tracking)
    client.log_text(run_id, json.dumps(decision, indent=2), f"decisions/{date}.json")
    client.log_artifact(run_id, str(report), artifact_path="drift")
