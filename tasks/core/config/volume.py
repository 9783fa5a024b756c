"""Volume-aware sizes: the keys that may say `auto`, resolved from the data's measured volume.

A holdout of 14 days is 12,000 flights but 280 rows of a 20-rows-a-day data set, too few for
the gate to tell two models apart; 5,000 new labelled rows are five days of flights and most
of a year of the small one. So the sizes that depend on volume may say `auto`, and are then
resolved from what ingest measured (`reports/ingest.json`, `volume_by_month`): the fewest days,
at least a floor key, that hold what the consumer needs (rows, rows of each class) at the rate
of the data's LEANEST month (fewest rows, positives or negatives a day, each on its own), so a
slow season, weekends without data or a missing week never leave a window short. A number
stays a number, checked against the same needs. Pure: figures in, sizes or one-line errors out.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

AUTO = "auto"
WINDOW_DAYS = "train.max_window_days"
# Months with fewer days than this inside the data's span (a partial first or last month) do
# not set the lean rate: two days of a month say little about its volume.
MIN_MONTH_DAYS = 7


@dataclass(frozen=True)
class Rate:
    """Rows, positives and negatives per day in the leanest month (each its own minimum)."""

    rows: float
    positives: float
    negatives: float
    month: str  # the month with the fewest rows a day, named in messages


@dataclass(frozen=True)
class Volume:
    """The measured volume: per calendar day (windows cut by date: the holdout) and per day
    with data (windows that count days with rows: drift, labels)."""

    per_calendar_day: Rate
    per_data_day: Rate

    @classmethod
    def from_summary(cls, summary: dict) -> Volume | None:
        """From the ingest summary; None when it predates `volume_by_month`."""
        months = summary.get("volume_by_month")
        if not months:
            return None
        first, last = (dt.date.fromisoformat(summary[k]) for k in ("date_min", "date_max"))
        spans = {m: _days_in_span(m, first, last) for m in months}
        kept = {m: v for m, v in months.items() if spans[m] >= MIN_MONTH_DAYS} or months
        return cls(
            per_calendar_day=_lean(kept, {m: spans[m] for m in kept}),
            per_data_day=_lean(kept, {m: v["days"] for m, v in kept.items()}),
        )


def _days_in_span(month: str, first: dt.date, last: dt.date) -> int:
    year, number = map(int, month.split("-"))
    start = max(dt.date(year, number, 1), first)
    end = min(dt.date(year, number, calendar.monthrange(year, number)[1]), last)
    return max((end - start).days + 1, 1)


def _lean(months: dict[str, dict], days: dict[str, int]) -> Rate:
    def rates(key: str) -> dict[str, float]:
        return {m: _count(v, key) / days[m] for m, v in months.items()}

    rows = rates("rows")
    return Rate(
        rows=min(rows.values()),
        positives=min(rates("positives").values()),
        negatives=min(rates("negatives").values()),
        month=min(rows, key=rows.__getitem__),
    )


def _count(month: dict, key: str) -> int:
    if key == "negatives":
        return month["rows"] - month["positives"]
    return month[key]


def volume_by_month(dates: Any, labels: Any) -> dict[str, dict[str, int]]:
    """`{"2013-01": {"rows", "days", "positives"}}` of a feature table: its event dates
    (YYYY-MM-DD text) and 0/1 labels, as ingest summarises them."""
    import pandas as pd

    frame = pd.DataFrame({"day": dates, "label": labels})
    grouped = frame.groupby(frame["day"].str[:7])
    return {
        str(month): {
            "rows": len(part),
            "days": int(part["day"].nunique()),
            "positives": int(part["label"].sum()),
        }
        for month, part in grouped
    }


def days_needed(floor: int, rate: Rate, rows: int = 0, class_rows: int = 0) -> float:
    """The fewest days, at least `floor`, holding `rows` rows and `class_rows` rows of each
    class at `rate`; infinite when the rate of something needed is zero."""

    def days(need: int, per_day: float) -> float:
        if need <= 0:
            return 0
        return math.ceil(need / per_day - 1e-9) if per_day > 0 else math.inf

    return max(
        floor,
        days(rows, rate.rows),
        days(class_rows, rate.positives),
        days(class_rows, rate.negatives),
    )


@dataclass(frozen=True)
class Need:
    """What one volume-dependent key must hold: rows and rows of each class, over days that
    are calendar days (a date window) or days with data, with a floor for `auto`."""

    key: str  # dotted params key that may say auto
    floor_key: str  # the key of the floor in days
    days_with_data: bool
    rows_key: str | None  # the keys whose values say how many rows / class rows are needed
    class_rows_key: str | None
    holds: str  # what the days are, in messages


NEEDS = (
    Need(
        "train.test_days",
        "train.min_test_days",
        False,
        "promote.evidence.min_rows",
        "promote.evidence.min_class_rows",
        "the holdout",
    ),
    Need(
        "train.validation_days",
        "train.min_validation_days",
        False,
        "promote.evidence.min_rows",
        "promote.evidence.min_class_rows",
        "the validation days",
    ),
    Need(
        "drift.window_days",
        "drift.min_days",
        True,
        "drift.min_window_rows",
        None,
        "the drift window",
    ),
    Need(
        "drift.performance_days",
        "drift.min_days",
        True,
        "promote.evidence.min_rows",
        "promote.evidence.min_class_rows",
        "the live-AUC days",
    ),
)


# Every key that may say `auto`.
AUTO_KEYS = (
    "validate.min_rows",
    *(need.key for need in NEEDS),
    "retrain.min_new_labelled_rows",
    "evaluate.calibration_bins",
)


def get(raw: dict, key: str) -> Any:
    """The value at a dotted key of a params dict."""
    value: Any = raw
    for part in key.split("."):
        value = value[part]
    return value


def put(raw: dict, key: str, value: Any) -> None:
    """Set the value at a dotted key of a params dict."""
    *parents, last = key.split(".")
    for part in parents:
        raw = raw[part]
    raw[last] = value


def resolve(raw: dict, volume: Volume | None, words: tuple[str, str]) -> dict[str, int]:
    """The value of every `auto` key of `raw` (a params dict), and a ConfigError line for any
    size, auto or given, the data cannot fill. `words` is (data set name, plural row noun).
    Keys that need the volume are left out while it is unknown (None)."""
    from tasks.core.errors import ConfigError

    resolved: dict[str, int] = {}
    if get(raw, "validate.min_rows") == AUTO:  # a holdout's worth to test on, as many to learn
        resolved["validate.min_rows"] = 2 * get(raw, "promote.evidence.min_rows")
    if volume is None:
        return resolved
    name, rows_word = words
    for need in NEEDS:
        rate = volume.per_data_day if need.days_with_data else volume.per_calendar_day
        rows = get(raw, need.rows_key) if need.rows_key else 0
        class_rows = get(raw, need.class_rows_key) if need.class_rows_key else 0
        needed = days_needed(get(raw, need.floor_key), rate, rows, class_rows)
        given = get(raw, need.key)
        if needed == math.inf:  # a class that never occurs in a month: no days will do
            which = "positive" if rate.positives == 0 else "negative"
            raise ConfigError(
                f"{name} has no {which} {rows_word} in {rate.month}: {need.holds} "
                f"({need.key}: {given}) cannot hold {need.class_rows_key} {class_rows} of each "
                f"class there; check dataset.target (the label rule) and dataset.window"
            )
        if given == AUTO:
            resolved[need.key] = int(needed)
            continue
        short = _shortfall(given, rate, (rows, class_rows), rows_word)
        if short:
            raise ConfigError(
                f"{name} has {_per_day(rate, rows_word, need.days_with_data)}: {need.holds}"
                f" ({need.key}: {given}) {short}; set {need.key} to ≥ {int(needed)} (or auto), "
                "or lower " + " / ".join(k for k in (need.rows_key, need.class_rows_key) if k)
            )
    if get(raw, "retrain.min_new_labelled_rows") == AUTO:
        days = get(raw, "retrain.min_new_labelled_days")
        resolved["retrain.min_new_labelled_rows"] = math.ceil(days * volume.per_calendar_day.rows)
    if get(raw, "evaluate.calibration_bins") == AUTO:
        holdout = resolved.get("train.test_days", get(raw, "train.test_days"))
        resolved["evaluate.calibration_bins"] = calibration_bins(
            holdout * volume.per_calendar_day.rows,
            get(raw, "evaluate.min_bin_rows"),
            get(raw, "evaluate.max_calibration_bins"),
        )
    _check_window(raw, resolved, name)
    return resolved


def calibration_bins(holdout_rows: float, min_bin_rows: int, max_bins: int) -> int:
    """As many equal-width bins as the holdout fills with `min_bin_rows` rows each on average
    (2 to `max_bins`): by chance alone a well-calibrated model on n rows and B bins reads an ECE
    of ≈0.3·√(B/n), 0.4·√(B/n) one time in ten (15 bins, 650 rows: 0.047, 0.06 against a 0.05
    bound; 12,000 rows: 0.011)."""
    return int(min(max_bins, max(2, holdout_rows // min_bin_rows)))


def _shortfall(days: int, rate: Rate, needs: tuple[int, int], rows_word: str) -> str:
    """What `days` days lack at `rate` of `needs` (rows, rows of each class), in the data
    set's words ("holds ≈42 readings, fewer than 500"), or ""."""
    rows, class_rows = needs
    if days * rate.rows < rows:
        return f"holds ≈{days * rate.rows:,.0f} {rows_word}, fewer than {rows:,}"
    fewer = min(days * rate.positives, days * rate.negatives)
    if fewer < class_rows:
        return f"holds ≈{fewer:,.0f} {rows_word} of the rarer class, fewer than {class_rows:,}"
    return ""


def _per_day(rate: Rate, rows_word: str, days_with_data: bool) -> str:
    per = "a day with data" if days_with_data else "a day"
    return f"≈{rate.rows:,.1f} {rows_word} {per} in its leanest month ({rate.month})"


def _check_window(raw: dict, resolved: dict[str, int], name: str) -> None:
    """The training window, and the sliding one of `--until`, must hold the validation and
    test days and at least one day to train on."""
    from tasks.core.errors import ConfigError

    def days(key: str) -> int | None:
        return resolved.get(key, get(raw, key))

    held = days("train.validation_days") + days("train.test_days")
    window = get(raw, "train.window")
    start, end = (dt.date.fromisoformat(str(window[k])) for k in ("start", "end"))
    length = (end - start).days + 1
    spans = {"train.window": length, WINDOW_DAYS: days(WINDOW_DAYS)}
    for key, have in spans.items():
        if have is not None and have <= held:  # max_window_days null: no cap
            raise ConfigError(
                f"{name}: {key} spans {have} days, too few for {days('train.validation_days')} "
                f"validation + {days('train.test_days')} test days (train.validation_days, "
                f"train.test_days) and days to train on; make it well over {held} days"
            )
