"""The nightly contract, checked for a run of days (one day at night; a replay tick or a backfill
otherwise) with as few Great Expectations passes as the files allow.

A GX pass costs about a second whatever the rows (measured here: 77 rules on one day's ~900
rows, 1.1 s), so seven days checked one by one cost seven times what they cost together. Days
whose files share a schema are therefore checked first in one pass over all of them. A day is
taken from that pass only when nothing in it broke a rule; every other day is checked alone
against its own contract, so its quarantine reasons and gate errors are exactly those of a
nightly run. The shared pass is at least as strict as a day's own for every rule, except two
that only a day can break, which are screened separately and send the day to be checked alone:
the day's window (a row in the wrong day's file) and a feature column left entirely null.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pandas as pd

from tasks.core.columns import REASON
from tasks.core.config import DateWindow, Params
from tasks.core.errors import DataSourceError
from tasks.data.contract import Contract, build_contract
from tasks.core.io import read_table
from tasks.data.validate import Outcome, check_table


def nightly_contract(params: Params, first: dt.date, last: dt.date) -> Contract:
    """Features only (labels arrive later), every row inside [first, last]."""
    dataset = params.dataset.model_copy(update={"window": DateWindow(start=first, end=last)})
    return build_contract(
        dataset,
        params.validate_.rules,
        min_rows=params.score.min_rows,
        with_target=False,
        name=first.isoformat() if first == last else f"{first}..{last}",
        empty_nullable_fails=params.score.empty_columns == "fail",
    )


def check_day(params: Params, day: dt.date, frame: pd.DataFrame, source: Path) -> Outcome:
    return check_table(
        frame, nightly_contract(params, day, day), str(source), params.score.max_bad_fraction
    )


def no_rows(params: Params, frame: pd.DataFrame, source: Path) -> Outcome:
    """The verdict on a header-only batch: a day without data (a weekend, a holiday, an
    outage) is a normal day with nothing to check or score, not a broken file."""
    return Outcome(
        source=str(source),
        rows=0,
        checks=[],
        clean=frame,
        quarantined=frame.assign(**{REASON: pd.Series(dtype=object)}),
        max_bad_fraction=params.score.max_bad_fraction,
        duration_s=0.0,
    )


def check_batches_exist(params: Params, sources: dict[dt.date, Path]) -> None:
    """Every day's batch file is there: an absent file is an upstream that has not delivered,
    never a day without data (that is a header-only file). All missing days named at once."""
    missing = [day.isoformat() for day, path in sources.items() if not path.exists()]
    if missing:
        raise DataSourceError(
            f"{params.score.incoming_dir}: no batch file for {len(missing)} of {len(sources)} "
            f"day{'s' if len(sources) != 1 else ''} "
            f"({', '.join(missing[:5])}{', …' if len(missing) > 5 else ''}); the upstream "
            "writes YYYY-MM-DD.parquet, a header-only file for a day without data; write them "
            "or narrow the dates"
        )


def validate_batches(params: Params, sources: dict[dt.date, Path]) -> dict[dt.date, Outcome]:
    """Each day's file checked against its nightly contract; see the module for the shared pass.
    Header-only files are days without data and skip the contract."""
    check_batches_exist(params, sources)
    frames = {day: read_table(path) for day, path in sources.items()}
    empty = {day: no_rows(params, f, sources[day]) for day, f in frames.items() if len(f) == 0}
    rows = {day: frame for day, frame in frames.items() if day not in empty}
    shared = _shared_pass(params, rows, sources) if len(rows) > 1 else {}
    return {
        day: empty.get(day) or shared.get(day) or check_day(params, day, frames[day], sources[day])
        for day in frames
    }


def _schema(frame: pd.DataFrame) -> tuple[tuple[str, str], ...]:
    return tuple((str(name), str(dtype)) for name, dtype in frame.dtypes.items())


def _on_its_day(frame: pd.DataFrame, column: str, day: dt.date) -> bool:
    values = frame.get(column)
    if values is None or not pd.api.types.is_datetime64_any_dtype(values):
        return False
    return bool((values.dt.date == day).all())


def _shared_pass(
    params: Params, frames: dict[dt.date, pd.DataFrame], sources: dict[dt.date, Path]
) -> dict[dt.date, Outcome]:
    """Outcomes of the days that passed the one pass over all days sharing the first's schema."""
    schema = _schema(next(iter(frames.values())))
    event_time, features = params.dataset.event_time, params.dataset.features.names
    days = [
        day
        for day, frame in frames.items()
        if _schema(frame) == schema
        and len(frame) >= params.score.min_rows
        and _on_its_day(frame, event_time, day)
        and frame.reindex(columns=features).notna().any().all()
    ]
    if len(days) < 2:
        return {}
    started = time.perf_counter()
    together = pd.concat([frames[day] for day in days], ignore_index=True)
    outcome = check_table(together, nightly_contract(params, min(days), max(days)), "shared", 1.0)
    if not all(c.success for c in outcome.checks if c.level == "table"):
        return {}
    broken = set(outcome.quarantined[event_time].dt.date)
    share = (time.perf_counter() - started) / len(days)
    return {
        day: Outcome(
            source=str(sources[day]),
            rows=len(frames[day]),
            checks=[c for c in outcome.checks if c.level == "table"],
            clean=frames[day].reset_index(drop=True),
            quarantined=outcome.quarantined.iloc[:0],
            max_bad_fraction=params.score.max_bad_fraction,
            duration_s=share,
        )
        for day in days
        if day not in broken
    }
