"""The cost-aware policy's probe on small synthetic histories: a concept that changed after the
champion's window is worth a retrain; a stable one is not; too few rows is no evidence."""

from __future__ import annotations

import copy
import datetime as dt

import numpy as np
import pandas as pd
import pytest
from helpers import SENSORS_DATASET

from tasks.core.columns import EVENT_DATE
from tasks.core.config import Params
from tasks.core.io import write_partitioned
from tasks.monitoring.value import (
    expected_benefit,
    look_confidence,
    look_number,
    percent,
    probe_start,
    retrain_value,
)

START = dt.date(2024, 1, 1)
DAY = dt.date(2024, 6, 1)  # the probe days: May 18-31
CHAMPION_END = dt.date(2024, 3, 31)


def _history(rows_per_day: int, flips: bool) -> pd.DataFrame:
    """Readings whose failures follow temp; with `flips`, from April on they follow the
    opposite sign (the world changed after the champion's window)."""
    rng = np.random.default_rng(7)
    days = pd.date_range(START, DAY - dt.timedelta(days=1), freq="D")
    date = np.repeat(days.date, rows_per_day)
    temp = rng.normal(10, 8, len(date))
    sign = np.where((date >= dt.date(2024, 4, 1)) & flips, -1.0, 1.0)
    failed = (rng.random(len(date)) < 1 / (1 + np.exp(-sign * (temp - 10) / 2))).astype(int)
    return pd.DataFrame(
        {
            "reading_id": [f"r{i}" for i in range(len(date))],
            "site": rng.choice(["north", "south"], len(date)),
            "shift": rng.integers(1, 4, len(date)),
            "temp": temp,
            "hour": rng.integers(0, 24, len(date)),
            "failed": failed,
            EVENT_DATE: [d.isoformat() for d in date],
        }
    )


def _params(base_params_dict: dict, validated, rows_per_night: int = 1_000_000) -> Params:
    raw = copy.deepcopy(base_params_dict)
    raw["dataset"] = {**SENSORS_DATASET, "window": {"start": str(START), "end": "2024-12-31"}}
    raw["validate"]["rules"] = {}
    raw["validate"]["validated_dir"] = str(validated)
    raw["train"]["window"] = {"start": str(START), "end": str(CHAMPION_END)}
    raw["train"] |= {"validation_days": 7, "test_days": 14}  # as `auto` resolves them here
    raw["baseline"]["max_iter"] = 60
    raw["cost"]["production"]["rows_per_night"] = rows_per_night
    return Params.model_validate(raw)


@pytest.mark.parametrize(
    ("flips", "worth"),
    [(True, True), (False, False)],  # 120 readings a day: the stable model has learnt it all
    ids=["concept-changed", "stable"],
)
def test_probe_finds_what_new_labels_are_worth(tmp_path, base_params_dict, flips, worth):
    validated = write_partitioned(tmp_path / "validated", _history(120, flips), EVENT_DATE)
    params = _params(base_params_dict, validated)
    value = retrain_value(params, DAY, CHAMPION_END, retrain_cost=0.01)
    assert value.evidence and value.probe_rows == 7 * 120
    assert value.worth_it is worth
    if flips:
        # the 7th disjoint week since the champion's window: judged at 1 - 0.05 * 6 / (pi^2 49)
        assert value.look == 7 and value.confidence == pytest.approx(0.99938, abs=1e-5)
        assert value.low > 0
        assert "worth it" in value.reason and "(99.938%: look 7 at the champion)" in value.reason
        assert "840 readings of 2024-05-25..2024-05-31" in value.reason
    else:  # more labels of the same world still help a little, less than retrain.min_gain
        assert value.gain < params.retrain.min_gain and value.low < 0
        assert "not enough evidence of a gain" in value.reason


def test_a_real_gain_not_worth_its_cost_is_not_taken(tmp_path, base_params_dict):
    validated = write_partitioned(tmp_path / "validated", _history(120, True), EVENT_DATE)
    params = _params(base_params_dict, validated, rows_per_night=1)  # almost no traffic
    value = retrain_value(params, DAY, CHAMPION_END, retrain_cost=5.0)
    assert value.low > 0 and not value.worth_it
    assert "not worth it" in value.reason


def test_too_few_probe_rows_is_no_evidence(tmp_path, base_params_dict):
    validated = write_partitioned(tmp_path / "validated", _history(3, True), EVENT_DATE)
    value = retrain_value(_params(base_params_dict, validated), DAY, CHAMPION_END, 0.01)
    assert not value.evidence and not value.worth_it
    assert value.reason.startswith("not enough evidence yet: 183 labelled readings")


def test_nothing_new_since_the_champion_is_no_evidence(tmp_path, base_params_dict):
    validated = write_partitioned(tmp_path / "validated", _history(60, True), EVENT_DATE)
    recent = DAY - dt.timedelta(days=10)
    value = retrain_value(_params(base_params_dict, validated), DAY, recent, 0.01)
    assert not value.evidence and "not enough evidence yet" in value.reason


def test_expected_benefit_scales_with_volume_and_gain(base_params_dict, tmp_path):
    params = _params(base_params_dict, tmp_path)
    # 0.01 AUC x 1.0 per point per 1M x 1M rows x 28 nights
    assert expected_benefit(params, 0.01) == pytest.approx(28.0)
    assert expected_benefit(params, 0.0) == 0.0


def _daily(rows: list[int], positives: list[int], last: dt.date) -> pd.DataFrame:
    days = [last - dt.timedelta(days=i) for i in range(len(rows))][::-1]
    return pd.DataFrame({"rows": rows, "positives": positives}, index=days)


def test_probe_days_grow_until_the_evidence_is_in():
    end = dt.date(2024, 5, 31)
    busy = _daily([100] * 60, [30] * 60, end)
    assert probe_start(busy, end, end - dt.timedelta(days=60), 14, 500, 50) == dt.date(2024, 5, 18)
    quiet = _daily([25] * 60, [6] * 60, end)  # 25 a day: 20 days make 500 rows, 120 positives
    assert probe_start(quiet, end, end - dt.timedelta(days=60), 14, 500, 50) == dt.date(2024, 5, 12)


def test_probe_never_takes_the_older_half_of_the_new_days():
    end = dt.date(2024, 5, 31)
    quiet = _daily([25] * 30, [6] * 30, end)  # 30 new days: a 20-day probe would leave 10
    assert probe_start(quiet, end, end - dt.timedelta(days=30), 14, 500, 50) is None
    one_class = _daily([100] * 60, [0] * 60, end)
    assert probe_start(one_class, end, end - dt.timedelta(days=60), 14, 500, 50) is None


def test_looks_are_counted_in_probe_spans_not_ticks():
    end = dt.date(2024, 3, 31)
    # the first probe that can decide: a week to score, a week before it to learn from
    assert look_number(dt.date(2024, 4, 8), dt.date(2024, 4, 14), end) == 1
    # a night later the same champion is looked at again over nearly the same days: still look 1
    assert look_number(dt.date(2024, 4, 9), dt.date(2024, 4, 15), end) == 1
    assert look_number(dt.date(2024, 5, 25), dt.date(2024, 5, 31), end) == 7
    # a small volume takes longer probes: fewer looks fit in the same days
    assert look_number(dt.date(2024, 5, 4), dt.date(2024, 5, 31), end) == 1


def test_every_look_together_keeps_the_false_alarm_rate_within_alpha():
    levels = np.array([look_confidence(0.95, k) for k in range(1, 100_001)])
    assert np.all(np.diff(levels[:1000]) > 0)  # each later look is held to a stricter level
    assert levels[0] == pytest.approx(1 - 0.05 * 6 / np.pi**2)
    assert (1 - levels).sum() <= 0.05
    assert [percent(levels[k - 1]) for k in (1, 7, 38)] == ["96.96%", "99.938%", "99.9979%"]
    # where a fixed 95 % level over 16 looks would raise a false alarm in about a third of
    # champions' lives (one-sided 2.5 % each: 1 - 0.975 ** 16 = 0.33)
    assert 1 - 0.975**16 > 0.3 and (1 - levels[:16]).sum() / 2 < 0.025
