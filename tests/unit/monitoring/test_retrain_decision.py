"""The retrain decision, pure: which evidence triggers it and what blocks it."""

from __future__ import annotations

import datetime as dt

from tasks.core.config import RetrainConfig
from tasks.monitoring.retrain import champion_window_end, decide

CFG = RetrainConfig(
    mode="inline",
    max_drift_share=0.5,
    max_prediction_drift=0.1,
    max_auc_drop=0.03,
    cooldown_days=14,
    min_new_labelled_rows=5000,
    min_new_labelled_days=6,
    state_path="state.json",
)
DAY = dt.date(2013, 7, 15)
CALM = {"drift_share": 0.1, "prediction_drift": {"score": 0.02}, "auc_drop": 0.0, "live_auc": 0.7}


def test_no_trigger_no_retrain():
    decision = decide(CFG, DAY, CALM, new_labelled_rows=50_000, last_retrain=None)
    assert not decision.retrain and decision.reasons == []


def test_each_trigger_is_named():
    drifting = {
        "drift_share": 0.6,
        "prediction_drift": {"score": 0.2},
        "auc_drop": 0.05,
        "live_auc": 0.65,
    }
    decision = decide(CFG, DAY, drifting, new_labelled_rows=50_000, last_retrain=None)
    assert decision.retrain and decision.until == "2013-07-14"
    assert [t.split(":")[0] for t in decision.triggers] == [
        "feature drift",
        "prediction drift",
        "performance",
    ]
    assert "60% of features drifted (threshold 50%)" in decision.triggers[0]


def test_cooldown_blocks_and_expires():
    drifting = {**CALM, "drift_share": 0.7}
    recent = decide(CFG, DAY, drifting, 50_000, last_retrain=DAY - dt.timedelta(days=5))
    assert not recent.retrain
    assert recent.blocked_by == ["cooldown: last retrain 2013-07-10, 5 of 14 days ago"]
    assert recent.triggers  # the evidence is still recorded
    later = decide(CFG, DAY, drifting, 50_000, last_retrain=DAY - dt.timedelta(days=14))
    assert later.retrain


def test_too_few_new_labels_block():
    decision = decide(
        CFG, DAY, {**CALM, "auc_drop": 0.1}, new_labelled_rows=1200, last_retrain=None
    )
    assert not decision.retrain
    assert decision.blocked_by == [
        "too few new labels: 1,200 labelled rows since the champion's window (need 5,000)"
    ]


def test_missing_performance_evidence_is_not_a_trigger():
    decision = decide(CFG, DAY, {**CALM, "auc_drop": None, "live_auc": None}, 50_000, None)
    assert not decision.retrain


def test_window_end_from_tag():
    assert champion_window_end("2013-01-01..2013-03-31", DAY) == dt.date(2013, 3, 31)
    assert champion_window_end(None, DAY) == DAY
