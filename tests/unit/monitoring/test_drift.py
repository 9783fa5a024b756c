"""Drift on real January rows with real Evidently: a feature with no values on one side and the
sampling policy for large windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.core.columns import EVENT_DATE
from tasks.core.config import Params
from tasks.monitoring.drift import SCORE, drift_sample, feature_drift


@pytest.fixture(scope="module")
def params(base_params_dict) -> Params:
    return Params.model_validate(base_params_dict)


@pytest.fixture(scope="module")
def halves(feature_slice) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference: the first days; current: the later ones; both with a score column."""
    rng = np.random.default_rng(0)
    frame = feature_slice.assign(**{SCORE: rng.random(len(feature_slice))})
    cut = sorted(frame[EVENT_DATE].unique())[len(frame[EVENT_DATE].unique()) // 2]
    return frame[frame[EVENT_DATE] < cut], frame[frame[EVENT_DATE] >= cut]


def test_a_feature_with_no_values_counts_as_drifted_instead_of_failing(params, halves):
    reference, current = halves
    _, before = feature_drift(params, reference, current)
    outage = current.assign(temp=np.nan, dewp=np.nan)  # the weather feed stopped

    _, after = feature_drift(params, reference, outage)

    n = len(params.dataset.features.names)
    assert after["columns"]["temp"] == {
        "score": None,
        "threshold": None,
        "method": "all values missing",
        "drifted": True,
    }
    assert after["columns"]["dewp"]["drifted"]
    others = [c for c in params.dataset.features.names if c not in ("temp", "dewp")]
    assert {c: after["columns"][c] for c in others} == {c: before["columns"][c] for c in others}
    drifted = sum(1 for c in others if before["columns"][c]["drifted"]) + 2
    assert after["drifted_columns"] == drifted
    assert after["drift_share"] == pytest.approx(drifted / n)


def test_a_feature_added_since_the_champion_was_trained_is_listed_not_compared(params, halves):
    """The champion's reference was sampled with the feature list it was trained on: a feature
    params added later has nothing to be compared with (no KeyError)."""
    reference, current = halves
    _, summary = feature_drift(params, reference.drop(columns=["visib"]), current)
    assert summary["not_in_reference"] == ["visib"]
    assert "visib" not in summary["columns"]
    compared = len(params.dataset.features.names) - 1
    assert summary["drift_share"] == pytest.approx(summary["drifted_columns"] / compared)


def test_windows_over_max_rows_are_sampled_with_the_seed(params, halves):
    _, current = halves
    cfg = params.drift.model_copy(update={"max_rows": 500})

    first, second = drift_sample(cfg, current), drift_sample(cfg, current)

    assert len(first) == 500
    assert first.index.equals(second.index)  # seeded: the same rows every time
    assert len(drift_sample(cfg, current.head(400))) == 400  # small windows are whole


def _day_file(folder, day: str, rows: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"flight_id": [f"{day}-{i}" for i in range(rows)]}).to_parquet(
        folder / f"{day}.parquet"
    )


def test_windows_count_days_with_data_across_weekends_and_a_missing_week(tmp_path):
    """Weekends have empty files, a whole week has none: the window reaches back over both to
    the days that have rows; other names in the folder and later days are ignored."""
    from datetime import date, timedelta

    from tasks.monitoring.drift import days_with_rows

    folder = tmp_path / "predictions"
    start = date(2013, 3, 4)  # a Monday
    for offset in range(28):
        day = start + timedelta(days=offset)
        if date(2013, 3, 11) <= day <= date(2013, 3, 17):
            continue  # the whole week missing: no file at all
        _day_file(folder, day.isoformat(), 0 if day.weekday() >= 5 else 3)
    (folder / "notes.parquet").write_bytes(b"not a day")
    window = days_with_rows(folder, date(2013, 3, 26), 7)
    assert [d.isoformat() for d in window] == [
        "2013-03-26",
        "2013-03-25",
        "2013-03-22",
        "2013-03-21",
        "2013-03-20",
        "2013-03-19",
        "2013-03-18",
    ]
    assert days_with_rows(folder, date(2013, 3, 18), 3) == [
        date(2013, 3, 18),
        date(2013, 3, 8),
        date(2013, 3, 7),
    ]
    assert days_with_rows(tmp_path / "nothing-yet", date(2013, 3, 18), 7) == []


def test_an_unreadable_day_file_counts_so_its_reader_names_it(tmp_path):
    from datetime import date

    from tasks.monitoring.drift import days_with_rows

    folder = tmp_path / "labels"
    folder.mkdir()
    (folder / "2013-03-04.parquet").write_bytes(b"")
    assert days_with_rows(folder, date(2013, 3, 4), 7) == [date(2013, 3, 4)]
