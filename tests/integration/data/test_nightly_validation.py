"""Checking a run of nightly batches in one shared GX pass must change nothing: every day ends
with the verdict, clean rows and quarantine reasons it gets when checked alone. Real GX on real
January days; each case breaks the days in a way the shared pass could get wrong."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from tasks.core.config import load_params
from tasks.core.columns import EVENT_DATE
from tasks.data.nightly_validation import check_day, validate_batches
from tasks.data.validate import Outcome

DAYS = [dt.date(2013, 1, d) for d in (7, 8, 9)]


def _days(feature_slice: pd.DataFrame) -> dict[dt.date, pd.DataFrame]:
    target = load_params("params.yaml").dataset.target.name
    frames = {}
    for day in DAYS:
        rows = feature_slice[feature_slice[EVENT_DATE] == day.isoformat()]
        frames[day] = rows.drop(columns=[target, EVENT_DATE]).head(300).reset_index(drop=True)
    return frames


def _move_row(frames: dict) -> None:
    """A row of Jan 9 sits in Jan 7's file: inside the run's dates, outside its file's day."""
    frames[DAYS[0]] = pd.concat([frames[DAYS[0]], frames[DAYS[2]].tail(1)], ignore_index=True)
    frames[DAYS[2]] = frames[DAYS[2]].iloc[:-1]


def _repeat_id_across_days(frames: dict) -> None:
    """The same flight id on two days: a duplicate in the run, not within any one day."""
    frames[DAYS[1]].loc[0, "flight_id"] = frames[DAYS[0]].loc[0, "flight_id"]


def _out_of_range(frames: dict) -> None:
    frames[DAYS[1]].loc[:2, "wind_speed"] = 400.0


def _storm(frames: dict) -> None:
    """Most of one day's rows broken: that day fails its gate, the others still score."""
    frames[DAYS[2]].loc[:, "distance"] = np.inf


def _empty_nullable_column(frames: dict) -> None:
    """A day whose weather join broke: the union still has temps, the day alone has none."""
    frames[DAYS[1]]["temp"] = np.nan


def _drop_column(frames: dict) -> None:
    frames[DAYS[1]] = frames[DAYS[1]].drop(columns=["carrier"])


def _no_change(frames: dict) -> None:
    return None


def _summary(outcome: Outcome) -> tuple:
    reasons = sorted(outcome.quarantined.get("reason", pd.Series(dtype=object)).tolist())
    return (
        outcome.success,
        outcome.failures,
        len(outcome.clean),
        sorted(outcome.clean["flight_id"]),
        reasons,
    )


@pytest.mark.parametrize(
    ("corrupt", "passes"),
    [
        (_no_change, 1),  # all three days in one pass
        (_move_row, 2),  # Jan 7 screened out before the pass, checked alone
        (_repeat_id_across_days, 3),  # the pass flags both days: each checked again alone
        (_out_of_range, 2),
        (_storm, 2),
        (_drop_column, 2),  # Jan 8's schema differs: alone; Jan 7 and 9 together
        (_empty_nullable_column, 2),  # Jan 8 screened out: its gate fails alone
    ],
)
def test_shared_pass_gives_each_day_its_own_verdict(
    project, feature_slice, monkeypatch, corrupt: Callable[[dict], None], passes: int
):
    import tasks.data.nightly_validation as nightly

    calls = []
    real_check = nightly.check_table
    monkeypatch.setattr(  # counts GX passes; each still runs for real
        nightly, "check_table", lambda *a, **k: calls.append(1) or real_check(*a, **k)
    )
    params = load_params("params.yaml")
    frames = _days(feature_slice)
    corrupt(frames)
    sources = {}
    for day, frame in frames.items():
        sources[day] = project / f"{day}.parquet"
        frame.to_parquet(sources[day], index=False)

    together = validate_batches(params, sources)
    assert len(calls) == passes
    alone = {day: check_day(params, day, frames[day], sources[day]) for day in DAYS}

    assert list(together) == DAYS
    for day in DAYS:
        assert _summary(together[day]) == _summary(alone[day]), day
        assert together[day].source == str(sources[day])


def test_each_break_shows_in_its_own_day(project, feature_slice):
    """The cases above compare with the per-day check; this pins what that check finds."""
    params = load_params("params.yaml")
    frames = _days(feature_slice)
    _move_row(frames)
    _out_of_range(frames)
    _drop_column(frames)  # Jan 8 loses a column: its table-level rule fails, nothing else does
    sources = {}
    for day, frame in frames.items():
        sources[day] = project / f"{day}.parquet"
        frame.to_parquet(sources[day], index=False)

    outcomes = validate_batches(params, sources)

    moved = outcomes[DAYS[0]].quarantined
    assert len(moved) == 1 and "outside the window 2013-01-07..2013-01-07" in moved["reason"][0]
    assert not outcomes[DAYS[1]].success
    assert any("column carrier is missing" in f for f in outcomes[DAYS[1]].failures)
    assert outcomes[DAYS[2]].success and outcomes[DAYS[2]].quarantined.empty
