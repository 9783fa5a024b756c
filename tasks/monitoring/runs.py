"""The monitoring experiment in MLflow: one run per batch date, holding that date's drift
metrics, its report and what scoring it cost (a rerun of the date reuses its run)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from tasks.core import tags as tag
from tasks.core.config import Params
from tasks.registry import tracking


def monitoring_run_id(params: Params, date: str) -> str | None:
    """The monitoring run of `date` (None before its first), with the monitoring experiment
    made the active one."""
    import mlflow

    tracking.configure(params.tracking)
    experiment = tracking.use_experiment(params.tracking, params.drift.experiment)
    existing = mlflow.search_runs(
        [experiment.experiment_id],
        f"tags.`{tag.DATE}` = '{date}'",
        max_results=1,
        output_format="list",
    )
    return existing[0].info.run_id if existing else None


def log_scoring_cost(params: Params, date: str, cost: dict[str, Any]) -> None:
    """Log a scoring run's cost on the monitoring run of `date`, where its drift check is (one
    run per date; created here if the drift check was skipped)."""
    import mlflow

    run_id = monitoring_run_id(params, date)
    try:
        with mlflow.start_run(run_id=run_id, run_name=date, tags={tag.DATE: date}):
            tracking.log_metrics(
                {
                    "cost_scoring": cost["cost"],
                    "cost_per_million": cost["cost_per_million"],
                    "scoring_cpu_s": cost["cpu_s"],
                    "scoring_wall_s": cost["wall_s"],
                    "scoring_cpu_s_per_million": cost["cpu_s_per_million"],
                    "scoring_rows": cost["rows"],
                }
            )
    finally:
        mlflow.set_experiment(params.tracking.experiment)


def log_monitoring(params: Params, summary: dict[str, Any], html: Path) -> None:
    """One run per date in the monitoring experiment (a rerun of the date reuses its run)."""
    import mlflow

    date = summary["date"]
    run_id = monitoring_run_id(params, date)
    step = int(dt.date.fromisoformat(date).strftime("%Y%m%d"))
    with mlflow.start_run(
        run_id=run_id,
        run_name=date,
        tags={tag.DATE: date, tag.MODEL_VERSION: summary["model_version"]},
    ):
        metrics = {
            "drift_share": summary["drift_share"],
            "drifted_columns": summary["drifted_columns"],
            "prediction_drift": summary["prediction_drift"].get("score", 0.0),
        }
        metrics |= {
            f"drift_{c}": v["score"]
            for c, v in summary["columns"].items()
            if v["score"] is not None
        }
        if summary["live_auc"] is not None:
            metrics["live_auc"] = summary["live_auc"]
        mlflow.log_metrics(metrics, step=step)
        mlflow.log_artifact(str(html), artifact_path="drift")
    mlflow.set_experiment(params.tracking.experiment)
