"""Nightly scoring for real (Prefect harness, MLflow registry, GX): the predictions file, an
idempotent rerun, lineage, and every kind of bad batch refused or quarantined cleanly."""

from __future__ import annotations

import datetime as dt
import json

import mlflow
import pandas as pd
import pytest
from helpers import DAY, prefect_flow_run, prefect_run_logs, run_cli

from tasks.core.config import load_params
from tasks.core.errors import DataSourceError, ValidationGateError
from tasks.core.layout import day_lock, day_paths
from tasks.monitoring.runs import day_step, day_timestamp, monitoring_run_id
from tasks.serving.champion import NoChampionError
from tasks.serving.nightly import score_day
from tasks.simulation.upstream import write_day_batch

COLUMNS = [
    "flight_id",
    "sched_dep_local",
    "score",
    "prediction",
    "model_name",
    "model_version",
    "scored_at",
]


def test_inference_flow_writes_predictions_and_reruns_idempotently(serving, prefect_harness):
    from prefect.artifacts import Artifact

    from flows.inference import inference_flow

    state = inference_flow(date=DAY.isoformat(), return_state=True)
    summary = state.result()
    path = day_paths(serving, DAY)["predictions"]
    first = pd.read_parquet(path)
    incoming = pd.read_parquet(day_paths(serving, DAY)["incoming"])
    assert list(first.columns) == COLUMNS
    assert len(first) == len(incoming) == summary["scored"]
    assert first["flight_id"].is_unique
    assert first["score"].between(0, 1).all() and set(first["prediction"]) <= {0, 1}
    assert (first["model_version"] == "1").all()

    inference_flow(date=DAY.isoformat())
    second = pd.read_parquet(path)
    assert len(second) == len(first)  # replaced, not appended
    pd.testing.assert_frame_equal(second.drop(columns="scored_at"), first.drop(columns="scored_at"))
    # no temp files left, no lock: the predictions folder holds only predictions
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert day_lock(serving, DAY).exists()

    cost = summary["cost"]
    assert cost["rows"] == summary["scored"] and cost["cpu_s"] > 0 and cost["gpu_s"] == 0
    assert cost["cost_per_million"] > 0 and cost["cpu_s_per_million"] > 0
    monitoring = mlflow.MlflowClient().get_run(monitoring_run_id(serving, DAY.isoformat()))
    assert monitoring.data.metrics["cost_per_million"] > 0
    assert monitoring.data.metrics["scoring_rows"] == summary["scored"]

    # Prefect: named by its day, tagged, ended with the retrain verdict, loopline's lines in it
    flow_run = prefect_flow_run(state.state_details.flow_run_id)
    assert flow_run.name == f"score-{DAY}"
    assert {"flight-delay", f"date:{DAY}", "retrain:inline", "trigger:manual"} <= set(flow_run.tags)
    decision = summary["retrain_decision"]
    assert decision is not None and not decision["retrain"]  # a few days: too few labels
    assert flow_run.state.message == (
        f"{summary['scored']:,} rows scored; no retrain: " + "; ".join(decision["reasons"])
    )
    line = f"score {DAY}: {summary['scored']} flights scored by flight-delay v1"  # the row noun
    logs = prefect_run_logs(flow_run.id, expect=line)
    assert sum(m.startswith(line) for m in logs) == 1, logs
    table = str(Artifact.get("nightly-scoring").data).splitlines()
    assert table[:2] == [f"| batch | {DAY} |", "| --- | --- |"]
    assert f"| rows scored | {summary['scored']:,} |" in table
    assert any(row.startswith("| decision | no retrain |") for row in table)


def test_monitoring_metrics_are_a_line_over_days_on_one_run(serving, prefect_harness):
    """Each scored day adds a point at step = its day number, on the champion's one monitoring
    run, with the retrain thresholds, the decision and its reasons beside it."""
    from flows.inference import inference_flow

    days = [DAY - dt.timedelta(days=2), DAY - dt.timedelta(days=1), DAY]
    for day in days[:2]:
        write_day_batch(serving, day)
    inference_flow(date=days[0].isoformat())
    inference_flow(date=days[1].isoformat())
    state = inference_flow(start=days[1].isoformat(), date=DAY.isoformat(), return_state=True)
    assert prefect_flow_run(state.state_details.flow_run_id).name == f"score-{days[1]}..{DAY}"

    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(serving.drift.experiment)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    (run,) = client.search_runs([experiment.experiment_id])
    assert {monitoring_run_id(serving, d.isoformat()) for d in days} == {run.info.run_id}
    assert run.info.run_name == "monitor-flight-delay-v1"
    assert run.data.tags["loopline.date"] == DAY.isoformat()

    steps = [day_step(d) for d in days]
    assert steps == [steps[0], steps[0] + 1, steps[0] + 2]
    for metric in ("drift_share", "prediction_drift", "retrain", "drift_share_threshold"):
        history = client.get_metric_history(run.info.run_id, metric)
        assert [m.step for m in history] == steps, metric
        assert [m.timestamp for m in history] == [day_timestamp(d) for d in days]
    threshold = client.get_metric_history(run.info.run_id, "drift_share_threshold")
    assert {m.value for m in threshold} == {serving.retrain.max_drift_share}
    assert {m.value for m in client.get_metric_history(run.info.run_id, "retrain")} == {0.0}
    decision = state.result()["retrain_decision"]
    reasons = "; ".join(decision["reasons"]) or "no trigger"
    assert run.data.tags["loopline.retrain_reasons"] == f"{DAY}: {reasons}"
    decisions = client.list_artifacts(run.info.run_id, "decisions")
    assert [a.path for a in decisions] == [f"decisions/{d}.json" for d in days]
    drift = client.list_artifacts(run.info.run_id, "drift")
    assert [a.path for a in drift] == [f"drift/{d}.html" for d in days]


def test_lineage_json_links_prediction_to_run_and_data(serving):
    score_day(serving, DAY)
    code, out, err = run_cli("lineage", "--date", DAY.isoformat(), "--json")
    assert code == 0, err
    chain = json.loads(out)
    keys = {
        "date",
        "predictions",
        "model_name",
        "model_version",
        "run_id",
        "git_commit",
        "data_fingerprint",
        "training_window",
    }
    assert keys <= set(chain) and all(chain[k] for k in keys)
    assert chain["model_version"] == "1" and chain["training_window"] == "2013-01-01..2013-01-31"


def _corrupt_batch(params, change) -> None:
    path = day_paths(params, DAY)["incoming"]
    frame = pd.read_parquet(path)
    change(frame, path)


def test_rows_of_another_day_and_unseen_categories(serving):
    def change(frame, path):
        frame.loc[:2, "sched_dep_local"] = pd.Timestamp("2013-02-15 09:00")
        frame.loc[3:5, "dest"] = "XXX"  # a new airport: scored through the OOV bucket
        frame.to_parquet(path)

    _corrupt_batch(serving, change)
    summary = score_day(serving, DAY)
    quarantine = pd.read_parquet(day_paths(serving, DAY)["quarantine"])
    assert len(quarantine) == 3
    assert set(quarantine["reason"]) == {f"sched_dep_local outside the window {DAY}..{DAY}"}
    assert summary["out_of_vocabulary"]["dest"] == 3
    assert summary["scored"] == summary["rows"] - 3


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda f, p: p.unlink(), DataSourceError, "no batch file for 1 of 1 day"),
        (lambda f, p: p.write_bytes(b""), DataSourceError, "file is empty"),
        (lambda f, p: p.write_bytes(p.read_bytes()[:200]), DataSourceError, "not a Parquet file"),
        (
            lambda f, p: f.drop(columns="carrier").to_parquet(p),
            ValidationGateError,
            "column carrier is missing",
        ),
        (
            lambda f, p: f.assign(distance=f["distance"].astype(str)).to_parquet(p),
            ValidationGateError,
            "column distance must be one of",
        ),
        (
            lambda f, p: f.assign(carrier=None).to_parquet(p),
            ValidationGateError,
            "> validate.max_bad_fraction",
        ),
    ],
    ids=[
        "missing",
        "empty",
        "corrupt",
        "missing-column",
        "wrong-dtype",
        "mostly-bad",
    ],
)
def test_bad_batches_change_no_predictions(serving, change, error, message):
    score_day(serving, DAY)
    predictions = day_paths(serving, DAY)["predictions"]
    before = predictions.read_bytes()
    _corrupt_batch(serving, change)
    with pytest.raises(error, match=message) as raised:
        score_day(serving, DAY)
    assert "\n" not in str(raised.value)
    assert predictions.read_bytes() == before  # the earlier good file stays as it was


def test_a_header_only_batch_is_a_day_without_data(serving):
    """The upstream's way of saying "nothing today" (a weekend, a holiday): nothing scored, an
    empty predictions file replaces the day's, and the day is no error."""
    score_day(serving, DAY)
    _corrupt_batch(serving, lambda f, p: f.head(0).to_parquet(p))
    summary = score_day(serving, DAY)
    assert (summary["rows"], summary["scored"], summary["quarantined"]) == (0, 0, 0)
    predictions = pd.read_parquet(day_paths(serving, DAY)["predictions"])
    assert list(predictions.columns) == COLUMNS and predictions.empty


@pytest.mark.parametrize("args", [("--date", str(DAY)), ("--start", str(DAY), "--end", str(DAY))])
def test_score_of_a_day_whose_file_is_absent_is_one_error_line(serving, args):
    day_paths(serving, DAY)["incoming"].unlink()
    code, _, err = run_cli("score", *args)
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith(f"loopline: error: {serving.score.incoming_dir}: no batch file for 1")
    assert "header-only file" in err


def test_no_champion_says_what_to_do(trained_copy):
    params = load_params("params.yaml")
    write_day_batch(params, DAY)
    with pytest.raises(NoChampionError, match="no champion yet; run `loopline train`"):
        score_day(params, DAY)
    assert not day_paths(params, DAY)["predictions"].exists()


@pytest.mark.parametrize("bad", ["../../etc", "2013-02-30", "13-01-01", "2013-1-1"])
def test_bad_date_is_refused_before_any_file_is_touched(trained_copy, bad):
    code, _, err = run_cli("score", "--date", bad, cwd=trained_copy)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("loopline: error:")
    assert not (trained_copy / "data" / "incoming").exists()
