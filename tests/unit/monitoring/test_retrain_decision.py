"""The retrain decision, pure: which evidence triggers it and what blocks it."""

from __future__ import annotations

import datetime as dt

from tasks.core.config import RetrainConfig
from tasks.monitoring.retrain import champion_window_end, decide
from tasks.monitoring.value import RetrainValue

CFG = RetrainConfig(
    mode="inline",
    policy="threshold",
    probe_days=14,
    min_gain=0.005,
    max_drift_share=0.5,
    max_prediction_drift=0.1,
    max_auc_drop=0.03,
    cooldown_days=14,
    min_new_labelled_rows=5000,
    min_new_labelled_days=6,
    state_path="state.json",
    runs_dir="runs",
)
DAY = dt.date(2013, 7, 15)
SINCE = dt.date(2013, 6, 30)  # the end of the champion's window
CALM = {"drift_share": 0.1, "prediction_drift": {"score": 0.02}, "auc_drop": 0.0, "live_auc": 0.7}


def test_no_trigger_no_retrain():
    decision = decide(CFG, DAY, CALM, 50_000, None, SINCE)
    assert not decision.retrain and decision.reasons == []


def test_each_trigger_is_named():
    drifting = {
        "drift_share": 0.6,
        "prediction_drift": {"score": 0.2},
        "auc_drop": 0.05,
        "live_auc": 0.65,
    }
    decision = decide(CFG, DAY, drifting, 50_000, None, SINCE)
    assert decision.retrain and decision.until == "2013-07-14"
    assert [t.split(":")[0] for t in decision.triggers] == [
        "feature drift",
        "prediction drift",
        "performance",
    ]
    assert "60% of features drifted (threshold 50%)" in decision.triggers[0]


def test_cooldown_blocks_and_expires():
    drifting = {**CALM, "drift_share": 0.7}
    recent = decide(CFG, DAY, drifting, 50_000, DAY - dt.timedelta(days=5), SINCE)
    assert not recent.retrain
    assert recent.blocked_by == ["cooldown: last retrain 2013-07-10, 5 of 14 days ago"]
    assert recent.triggers  # the evidence is still recorded
    later = decide(CFG, DAY, drifting, 50_000, DAY - dt.timedelta(days=14), SINCE)
    assert later.retrain


def test_too_few_new_labels_block():
    decision = decide(CFG, DAY, {**CALM, "auc_drop": 0.1}, 1200, None, SINCE)
    assert not decision.retrain
    assert decision.blocked_by == [
        "too few new labels: 1,200 labelled rows since the champion's window (need 5,000)"
    ]


def test_missing_performance_evidence_is_not_a_trigger():
    decision = decide(CFG, DAY, {**CALM, "auc_drop": None, "live_auc": None}, 50_000, None, SINCE)
    assert not decision.retrain


def test_window_end_from_tag():
    assert champion_window_end("2013-01-01..2013-03-31", DAY) == dt.date(2013, 3, 31)
    assert champion_window_end(None, DAY) == DAY


DRIFTING = {**CALM, "drift_share": 0.7}
WORTH_IT = RetrainValue(True, 0.012, 0.004, 0.02, 9000, 3.4, 0.01, True, "retrain value: worth it")
NO_GAIN = RetrainValue(True, 0.001, -0.006, 0.008, 9000, 0.3, 0.01, False, "retrain value: no")


def test_cost_aware_retrains_on_the_probe_not_on_drift():
    cfg = CFG.model_copy(update={"policy": "cost_aware"})
    drifting = decide(cfg, DAY, DRIFTING, 50_000, None, SINCE, NO_GAIN)
    assert not drifting.retrain and drifting.triggers == []
    # what it saw is kept: the drift signal and the probe's finding
    assert drifting.signals[0].startswith("seen, not deciding: feature drift")
    assert drifting.signals[-1] == "retrain value: no"
    assert drifting.value["gain"] == 0.001
    calm = decide(cfg, DAY, CALM, 50_000, None, SINCE, WORTH_IT)
    assert calm.retrain and calm.triggers == ["retrain value: worth it"]
    # the probe does not run while a cooldown blocks (no value): no retrain
    assert not decide(cfg, DAY, DRIFTING, 50_000, None, SINCE, None).retrain


def test_calendar_retrains_on_a_new_month_only():
    cfg = CFG.model_copy(update={"policy": "calendar"})
    assert decide(cfg, DAY, CALM, 50_000, None, SINCE).retrain  # June -> July
    same_month = decide(cfg, DAY, DRIFTING, 50_000, None, dt.date(2013, 7, 1))
    assert not same_month.retrain and same_month.triggers == []


def test_never_retrains_whatever_it_sees():
    cfg = CFG.model_copy(update={"policy": "never"})
    decision = decide(cfg, DAY, {**DRIFTING, "auc_drop": 0.2, "live_auc": 0.5}, 50_000, None, SINCE)
    assert not decision.retrain and decision.policy == "never"
    assert len(decision.signals) == 2  # drift and performance, recorded
