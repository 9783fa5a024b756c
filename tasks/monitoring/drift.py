"""Drift of the nightly batches with Evidently 0.7, against the champion's reference sample.

Feature drift (every feature, Evidently's defaults: Wasserstein / Jensen-Shannon at 0.1 for
samples over 1000 rows), prediction drift (the champion's scores) and, once labels of earlier
days have arrived, the live AUC on the trailing labelled days. Reports go to
`drift.report_dir/D.{html,json}` and, as one point a day, to the champion version's run in the
monitoring experiment (tasks/monitoring/runs.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.core import tags as tag
from tasks.core.columns import SCORE
from tasks.core.config import DriftConfig, Params
from tasks.core.errors import DataSourceError
from tasks.core.io import write_json, write_parquet
from tasks.core.layout import drift_report
from tasks.core.metrics import classification_metrics
from tasks.data.labels import join_scored, read_labels
from tasks.data.served import has_rows, read_scored, read_served_features, served_days
from tasks.monitoring.drift_report import write_report
from tasks.monitoring.runs import log_monitoring
from tasks.registry.reference import load_reference

log = logging.getLogger(__name__)


def days_with_rows(folder: Path, last: dt.date, count: int) -> list[dt.date]:
    """The latest `count` days up to `last` whose files in `folder` (nightly or online) hold
    rows, newest first: a day without data (a weekend, a holiday, an outage) does not use up a
    window."""
    days: list[dt.date] = []
    for day in reversed(served_days(folder)):
        if len(days) == count:
            break
        if day <= last and _holds_rows(folder, day):
            days.append(day)
    return days


def _holds_rows(folder: Path, day: dt.date) -> bool:
    """Whether a day's files have rows (their footers say); a file that cannot be read counts,
    so that its reader names what is wrong with it."""
    try:
        return has_rows(folder, day)
    except DataSourceError:
        return True


def current_window(params: Params, day: dt.date) -> pd.DataFrame:
    """Scored rows of the latest `drift.window_days` days with data up to `day`: features
    joined to their scores."""

    ids, frames = params.dataset.id_columns, []
    features_names = [c for c in params.dataset.features.names if c not in ids]
    for scored_day in days_with_rows(params.score.predictions_dir, day, params.drift.window_days):
        scored = read_scored(params, scored_day, [*ids, SCORE])
        # Only what is compared: an extra upstream column (even one named `score`) stays out.
        features = read_served_features(params, scored_day, [*ids, *features_names])
        # A row sent online on a day of a nightly batch is in both: its features count once.
        features = features.drop_duplicates(subset=ids, keep="last")
        frames.append(features.merge(scored, on=ids, how="inner"))
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def drift_sample(cfg: DriftConfig, current: pd.DataFrame) -> pd.DataFrame:
    """At most `drift.max_rows` rows, a seeded uniform sample: Evidently's cost grows with the
    rows while its distances (Wasserstein, Jensen-Shannon) are settled long before 50k."""
    if len(current) <= cfg.max_rows:
        return current
    log.info("drift: comparing a seeded sample of %d of %d rows", cfg.max_rows, len(current))
    return current.sample(cfg.max_rows, random_state=cfg.seed)


def feature_drift(
    params: Params, reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[Any, dict]:
    """Evidently's DataDriftPreset on the features plus ValueDrift on the score.

    A feature with no value at all on one side (a weather feed that stopped) has no distance
    to measure, and Evidently refuses it: it counts as drifted, "all values missing". A feature
    added to params after the champion was trained is not in its reference: nothing to compare
    it with until a model trained with it serves, so it is left out and listed."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    features = params.dataset.features
    unreferenced = [c for c in features.names if c not in reference.columns]
    if unreferenced:
        log.info(
            "drift: %s not in the champion's reference (added since): not compared", unreferenced
        )
    names = [c for c in features.names if c not in unreferenced]
    empty = [c for c in names if current[c].isna().all() or reference[c].isna().all()]
    compared = [c for c in names if c not in empty]
    definition = DataDefinition(
        numerical_columns=[*(c for c in features.numeric if c in compared), SCORE],
        categorical_columns=[c for c in features.categorical if c in compared],
    )
    columns = [*compared, SCORE]
    # loopline's thresholds, so Evidently's verdicts in the report are the loop's: the share of
    # drifted features that retrains, and the score drift (normed Wasserstein) that does.
    retrain = params.retrain
    report = Report(
        [
            DataDriftPreset(columns=compared, drift_share=retrain.max_drift_share),
            ValueDrift(column=SCORE, method="wasserstein", threshold=retrain.max_prediction_drift),
        ]
    )
    snapshot = report.run(
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    summary = _with_missing(_summarize(snapshot.dict()["metrics"]), empty, len(compared))
    return snapshot, summary | {"not_in_reference": unreferenced}


def _with_missing(summary: dict[str, Any], empty: list[str], compared: int) -> dict[str, Any]:
    """Count the features with no values as drifted columns of the share."""
    if not empty:
        return summary
    drifted = summary["drifted_columns"] + len(empty)
    missing = {"score": None, "threshold": None, "method": "all values missing", "drifted": True}
    return summary | {
        "drift_share": drifted / (compared + len(empty)),
        "drifted_columns": drifted,
        "columns": summary["columns"] | dict.fromkeys(empty, missing),
    }


def _summarize(metrics: list[dict]) -> dict[str, Any]:
    share, count, per_column, prediction = 0.0, 0, {}, {}
    for metric in metrics:
        config, value = metric.get("config") or {}, metric.get("value")
        kind = str(config.get("type", metric.get("metric_name", "")))
        if "DriftedColumnsCount" in kind:
            share, count = float(value["share"]), int(value["count"])
        elif "ValueDrift" in kind:
            method, threshold = str(config.get("method", "")), float(config.get("threshold", 0.1))
            p_value = "p_value" in method.lower() or "p-value" in method.lower()
            drifted = value < threshold if p_value else value >= threshold
            entry = {
                "score": float(value),
                "threshold": threshold,
                "method": method,
                "drifted": bool(drifted),
            }
            if config.get("column") == SCORE:
                prediction = entry
            else:
                per_column[str(config.get("column"))] = entry
    return {
        "drift_share": share,
        "drifted_columns": count,
        "columns": per_column,
        "prediction_drift": prediction,
    }


def live_auc(params: Params, day: dt.date) -> dict[str, Any]:
    """AUC of the served predictions on the latest `drift.performance_days` labelled days before
    `day` (days without labels do not count), with what the label files held that could not
    count: rows set aside (also written to `score.quarantine_dir/labels/D.parquet` with a
    reason), labels of rows that were not scored (quarantined or unknown ids) and days labelled
    but never scored."""

    ids, target = params.dataset.id_columns, params.dataset.target.name
    joined, set_aside, unmatched, unscored = [], 0, 0, []
    before = day - dt.timedelta(days=1)
    for labelled_day in days_with_rows(
        params.score.labels_dir, before, params.drift.performance_days
    ):
        labels = read_labels(params, labelled_day)
        if labels is None:
            continue
        scored = read_scored(params, labelled_day, [*ids, SCORE])
        if scored is None:
            log.warning("%s: labels for a day never scored; not used", labels.path)
            unscored.append(labelled_day.isoformat())
            continue
        if len(labels.rejected):
            quarantine = params.score.quarantine_dir / "labels" / labels.path.name
            write_parquet(quarantine, labels.rejected)
            set_aside += len(labels.rejected)
        joined.append(join_scored(labels, scored, ids))
        unmatched += len(labels.valid) - len(joined[-1])
    frame = pd.concat(joined, ignore_index=True) if joined else pd.DataFrame()
    auc = None
    if len(frame) and frame[target].nunique() == 2:
        metrics = classification_metrics(frame[target].to_numpy(), frame[SCORE].to_numpy(), 0.5, 10)
        auc = float(metrics["roc_auc"])
    return {
        "live_auc": auc,
        "labelled_rows": len(frame),
        "labels_set_aside": set_aside,
        "labels_of_unscored_rows": unmatched,
        "labelled_days_never_scored": unscored,
    }


def run_drift(params: Params, day: dt.date, champion: Any) -> dict[str, Any]:
    """Feature, prediction and performance drift of `day`; HTML + JSON + MLflow + summary (the
    decision goes into the HTML once it is taken, `drift_report.add_decision`)."""
    started = time.perf_counter()
    cfg = params.drift
    current = current_window(params, day)
    if current.empty:
        return {"date": day.isoformat(), "skipped": "no scored rows to compare"}
    scored_rows = len(current)
    days = days_with_rows(params.score.predictions_dir, day, cfg.window_days)
    current = drift_sample(cfg, current)
    reference = load_reference(champion.run_id)
    snapshot, summary = feature_drift(params, reference, current)
    performance = live_auc(params, day)
    auc = performance["live_auc"]
    baseline_auc = _champion_auc(champion)
    summary |= {
        "date": day.isoformat(),
        "model_version": champion.version,
        "window": f"{days[-1]}..{days[0]}",
        "reference_window": champion.window,
        "current_rows": len(current),
        "scored_rows": scored_rows,
        "sampled": len(current) < scored_rows,
        "reference_rows": len(reference),
        **performance,
        "champion_test_auc": baseline_auc,
        "auc_drop": None if auc is None or baseline_auc is None else baseline_auc - auc,
        "seconds": time.perf_counter() - started,
    }
    html = drift_report(cfg.report_dir, day, ".html")
    write_report(html, snapshot, summary, params)
    summary["report"] = str(html)
    write_json(drift_report(cfg.report_dir, day, ".json"), summary)
    log_monitoring(params, summary)
    return summary


def _champion_auc(champion: Any) -> float | None:
    import mlflow

    tags = mlflow.MlflowClient().get_model_version(champion.name, champion.version).tags
    value = tags.get(tag.TEST_ROC_AUC)
    return float(value) if value else None
