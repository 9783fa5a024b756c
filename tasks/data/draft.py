"""`loopline init`: a first `dataset` section and `validate.rules` guessed from a sample of a file.

Pure: a frame in, a draft out, and the draft as params text with a comment on every guess
saying what it rests on (how many rows, what was seen), so a person can check each one before
the first run. The guesses are deliberately plain: a column whose values are unique and never
null is an id, a column that parses as date/time is the event time, a column with two values
is the label, numbers are numeric features (cyclical codes included, docs/your-data.md), and
text with few distinct values is a categorical with a closed set.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import yaml

from tasks.core.categories import category_text
from tasks.core.columns import RESERVED
from tasks.core.errors import LooplineError

SAMPLE_ROWS = 10_000  # enough to see ranges and closed sets; reading more adds little
CLOSED_SET_MAX = 20  # at most this many distinct values: the set is written as a rule
CATEGORICAL_MAX_SHARE = 0.5  # more distinct values than this share of rows: an id or free text
RANGE_MARGIN = 0.1  # numeric ranges widened by this share of the range seen, each side
TIME_PARSE_SHARE = 0.95  # a text column is a date/time when this share of it parses
NAME_HINTS = {
    "id": re.compile(r"(^|_)(id|key|uuid)$", re.IGNORECASE),
    "time": re.compile(r"(time|date|_at$|^ts$|timestamp)", re.IGNORECASE),
    "label": re.compile(r"^(label|target|y|outcome|class|churn|default|fraud)", re.IGNORECASE),
}


class DraftError(LooplineError):
    """The sample lacks something every data set needs (an id, an event time, a label)."""


@dataclass
class Draft:
    """The guessed description of a data set, and why each guess was made."""

    source: str
    sample_rows: int
    total_rows: int
    dataset: dict[str, Any]
    rules: dict[str, dict[str, Any]]
    train_window: dict[str, str]
    notes: dict[str, str] = field(default_factory=dict)  # column → what it was taken as, why
    left_out: dict[str, str] = field(default_factory=dict)  # column → why it is no feature


def sample(frame: pd.DataFrame, rows: int = SAMPLE_ROWS, seed: int = 13) -> pd.DataFrame:
    """At most `rows` rows, seeded, in their original order."""
    if len(frame) <= rows:
        return frame.reset_index(drop=True)
    return frame.sample(rows, random_state=seed).sort_index().reset_index(drop=True)


def draft(frame: pd.DataFrame, name: str, source: str, total_rows: int) -> Draft:
    """Guess the dataset section and the rules from `frame`, a sample of `source`."""
    if frame.empty:
        raise DraftError(f"{source}: no rows to learn from; give a file with data")
    rows = len(frame)
    taken = _reserved_names(frame, source)
    event_time, times = _event_time(frame, source)
    target_column, positive = _label(frame, source, exclude={event_time})
    ids = _id_column(frame, source, exclude={event_time, target_column})
    draft = Draft(source, rows, total_rows, {}, {}, {})
    draft.notes[event_time] = (
        f"event time: {times.notna().mean():.0%} of {rows:,} values parse as date/time, "
        f"{times.min():%Y-%m-%d}..{times.max():%Y-%m-%d}"
    )
    draft.notes[target_column] = (
        f"label source: 2 values in {rows:,} rows, {positive!r} taken as the positive class "
        f"({(frame[target_column] == positive).mean():.1%} of rows)"
    )
    draft.notes[ids] = f"id: unique and never null in {rows:,} rows"
    categorical, numeric = [], []
    for column in frame.columns:
        if column in (event_time, target_column, ids):
            continue
        if column in taken:
            draft.left_out[column] = taken[column]
            continue
        kind, rule, note = _feature(frame[column], rows)
        if kind is None:
            draft.left_out[column] = note
            continue
        (categorical if kind == "categorical" else numeric).append(column)
        draft.rules[column] = rule
        draft.notes[column] = note
    if not categorical and not numeric:
        raise DraftError(f"{source}: no column left to be a feature besides id, time and label")
    label_name = "label" if "label" not in frame.columns else f"{target_column}_label"
    draft.dataset = {
        "name": name,
        "row_noun": "row",
        "source": {"kind": "file", "path": source},
        "event_time": event_time,
        "window": {"start": f"{times.min():%Y-%m-%d}", "end": f"{times.max():%Y-%m-%d}"},
        "target": {"name": label_name, "column": target_column, "op": "==", "value": positive},
        "id_columns": [ids],
        "leakage_columns": [],
        "features": {"categorical": categorical, "numeric": numeric},
    }
    draft.train_window = _train_window(times)
    return draft


def _reserved_names(frame: pd.DataFrame, source: str) -> dict[str, str]:
    """Columns named like one loopline adds: left out, with what to do if they matter."""
    return {
        str(c): f"named like loopline's own column ({RESERVED[str(c)]}); rename it in the "
        "source to use it"
        for c in frame.columns
        if str(c) in RESERVED
    }


def _event_time(frame: pd.DataFrame, source: str) -> tuple[str, pd.Series]:
    """The date/time column: a datetime dtype, or text that mostly parses; named ones first."""
    found: list[tuple[bool, str, pd.Series]] = []
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            parsed = values
        elif pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
            parsed = pd.to_datetime(values, errors="coerce", format="mixed")
            if parsed.notna().mean() < TIME_PARSE_SHARE:
                continue
        else:
            continue
        found.append((not NAME_HINTS["time"].search(str(column)), str(column), parsed))
    if not found:
        raise DraftError(
            f"{source}: no column parses as a date/time; loopline needs one (rows are grouped "
            "into days by it): add one to the file"
        )
    _, column, parsed = min(found, key=lambda f: (f[0], list(frame.columns).index(f[1])))
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return column, parsed


def _label(frame: pd.DataFrame, source: str, exclude: set[str]) -> tuple[str, Any]:
    """The label: a column with exactly two values, a label-like name first, else the last."""
    binary = [
        str(c) for c in frame.columns if c not in exclude and frame[c].dropna().nunique() == 2
    ]
    if not binary:
        raise DraftError(
            f"{source}: no column holds exactly two values; loopline learns a yes/no label: "
            "add one, or set dataset.target to a rule on a numeric column by hand"
        )
    named = [c for c in binary if NAME_HINTS["label"].search(c)]
    column = (named or binary)[-1]
    values = [v.item() if hasattr(v, "item") else v for v in frame[column].dropna().unique()]
    numbers = all(isinstance(v, int | float | bool) for v in values)
    return column, max(values) if numbers else sorted(values, key=str)[-1]


def _id_column(frame: pd.DataFrame, source: str, exclude: set[str]) -> str:
    """The id: unique and never null; an id-like name first, then text or whole numbers."""
    unique = [
        str(c)
        for c in frame.columns
        if c not in exclude
        and frame[c].notna().all()
        and frame[c].is_unique
        and not pd.api.types.is_float_dtype(frame[c])
    ]
    if not unique:
        raise DraftError(
            f"{source}: no column is unique and never null in the sample; loopline needs an id "
            "per row: add one to the file"
        )
    named = [c for c in unique if NAME_HINTS["id"].search(c)]
    return (named or unique)[0]


def _feature(values: pd.Series, rows: int) -> tuple[str | None, dict[str, Any], str]:
    """(kind or None, rule, note) of one candidate feature column."""
    nulls = int(values.isna().sum())
    present = values.dropna()
    nullable = nulls > 0
    seen_nulls = f"{nulls:,} null" if nulls else "never null"
    if present.empty:
        return None, {}, f"no value in {rows:,} rows"
    if pd.api.types.is_bool_dtype(values) or (
        not pd.api.types.is_numeric_dtype(values) and present.nunique() <= CLOSED_SET_MAX
    ):
        codes = sorted(category_text(present.astype(object)).astype(str).unique())
        rule = {"values": codes, "nullable": nullable}
        note = f"categorical: {len(codes)} distinct values in {rows:,} rows, {seen_nulls}"
        return "categorical", rule, note
    if pd.api.types.is_numeric_dtype(values):
        low, high = float(present.min()), float(present.max())
        if not (math.isfinite(low) and math.isfinite(high)):
            return None, {}, "holds infinite values"
        margin = (high - low) * RANGE_MARGIN or abs(high) * RANGE_MARGIN or 1.0
        whole = pd.api.types.is_integer_dtype(values)  # counts and codes: whole bounds
        rule_low = math.floor(low - margin) if whole else _round(low - margin, down=True)
        rule_high = math.ceil(high + margin) if whole else _round(high + margin, down=False)
        if low >= 0 > rule_low:
            rule_low = 0  # a quantity never seen negative stays non-negative
        rule = {"min": rule_low, "max": rule_high, "nullable": nullable}
        note = (
            f"numeric: seen {_plain(low)}..{_plain(high)} in {rows:,} rows, {seen_nulls}; "
            f"range widened by {RANGE_MARGIN:.0%} each side"
        )
        return "numeric", rule, note
    distinct = present.nunique()
    if distinct > CATEGORICAL_MAX_SHARE * rows:
        return None, {}, f"text with {distinct:,} distinct values in {rows:,} rows: free text?"
    rule = {"nullable": nullable}
    note = (
        f"categorical: {distinct:,} distinct values in {rows:,} rows (no closed set), {seen_nulls}"
    )
    return "categorical", rule, note


def _round(value: float, down: bool) -> float | int:
    """A bound a person would write: whole numbers where the data is coarse."""
    rounded = math.floor(value) if down else math.ceil(value)
    return int(rounded) if abs(value) >= 10 else round(value, 3)


def _plain(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def _train_window(times: pd.Series) -> dict[str, str]:
    """The first half of the dates, at most 90 days: the rest is left for the loop to meet."""
    first, last = times.min().date(), times.max().date()
    span = (last - first).days
    end = first + dt.timedelta(days=min(90, max(span // 2, 0)))
    return {"start": first.isoformat(), "end": end.isoformat()}


def render(draft: Draft, template: dict[str, Any]) -> str:
    """The draft as a whole params file: `template`'s sections with the dataset, the rules, the
    training window and the registry names replaced, every guess commented."""
    name = draft.dataset["name"]
    params = {
        **template,
        "dataset": draft.dataset,
        "validate": {
            **template["validate"],
            "rules": {c: _Flow(r) for c, r in draft.rules.items()},
        },
        "train": {**template["train"], "window": draft.train_window},
        "registry": {"model_name": name, "teacher_model_name": f"{name}-teacher"},
    }
    text = yaml.dump(params, Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=100)
    out = [
        f"# Drafted by `loopline init` from {draft.sample_rows:,} of {draft.total_rows:,} rows "
        f"of {draft.source}.",
        "# Every guess below says what it rests on: check each before the first `loopline ingest`.",
        "# dataset.leakage_columns is empty: list every column known only after the outcome.",
        *(f"# left out: {column}: {why}" for column, why in draft.left_out.items()),
        "",
    ]
    section = ""
    for line in text.splitlines():
        if not line.startswith(" "):
            section = line.rstrip(":")
        key = line.strip().split(":", 1)[0]
        note = None
        if section == "validate" and line.startswith("    ") and key in draft.notes:
            note = draft.notes[key]
        elif section == "dataset" and key in ("event_time", "id_columns", "target"):
            column = {
                "event_time": draft.dataset["event_time"],
                "id_columns": draft.dataset["id_columns"][0],
                "target": draft.dataset["target"]["column"],
            }[key]
            note = draft.notes[column]
        elif section == "dataset" and key == "row_noun":
            note = "what one row is, in the data set's own words (e.g. reading): say it"
        elif section == "train" and key == "window":
            note = "the first half of the dates, at most 90 days"
        out.append(f"{line}  # {note}" if note else line)
    return "\n".join(out) + "\n"


class _Flow(dict):
    """A rule written on one line, `{min: 0, max: 4, nullable: false}`, beside its comment."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    _Flow, lambda dumper, data: dumper.represent_mapping("tag:yaml.org,2002:map", data, True)
)
