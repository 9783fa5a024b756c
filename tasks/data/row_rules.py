"""The nightly contract's row rules on a request's rows, without a Great Expectations pass.

A GX pass costs about a second whatever the rows, the whole latency budget of an online
request, and even pandas costs milliseconds per rule on one row. The rules are the very
expectations `build_contract` makes (same columns, bounds, sets and `meta.reason`), evaluated
here on plain values, so a request's row breaks exactly the rule it would break in a nightly
batch and is answered with that rule's reason. Each expectation is read once into a `RowRule`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from tasks.core.config import Params
from tasks.data.nightly_validation import nightly_contract

# Online rows are filed under their own event day: the nightly window rule is open (as wide as
# pandas timestamps go).
OPEN_WINDOW = (dt.date(1700, 1, 1), dt.date(2200, 12, 31))
UNIQUENESS = ("ExpectColumnValuesToBeUnique", "ExpectCompoundColumnsToBeUnique")


@dataclass(frozen=True)
class RowRule:
    """One row rule of the contract, read off its expectation once (attributes of GX objects
    are slow to read on every request): the columns it reads, its reason, and either the
    uniqueness key or the test that a value breaks it (nulls pass all but not-null, as in GX)."""

    reason: str
    key: tuple[str, ...]  # the columns in order: a value rule's one, or a uniqueness key
    breaks: Callable[[Any], bool] | None  # a value rule's test; None: a uniqueness rule
    compound: bool = False  # a compound key: rows with nulls in it count as duplicates too

    @cached_property
    def columns(self) -> frozenset[str]:
        return frozenset(self.key)


def online_rules(params: Params) -> list[RowRule]:
    """The nightly contract's row rules with its day window open, built once."""
    return [_rule(e) for e in nightly_contract(params, *OPEN_WINDOW).row_level]


def is_missing(value: Any) -> bool:
    """Null as GX sees it: None, NaN, NaT."""
    return value is None or value != value  # NaN and NaT are not equal to themselves


def row_reasons(
    rows: list[dict[str, Any]], rules: list[RowRule], columns: set[str]
) -> dict[int, str]:
    """The reasons each row breaks (joined by "; "), by position; rows that break nothing are
    absent. Only rules on `columns` apply (those the rows are read for: a feature no loaded
    model reads is not asked for), and each of them must be in every row (the caller refuses
    first)."""
    broken: dict[int, list[str]] = {}
    for rule in rules:
        if not rule.columns <= columns:
            continue
        if rule.breaks is None:
            positions = _duplicates(rule, rows)
        else:
            (column,), breaks = rule.key, rule.breaks
            positions = [i for i, row in enumerate(rows) if breaks(row[column])]
        for position in positions:
            broken.setdefault(position, []).append(rule.reason)
    return {position: "; ".join(reasons) for position, reasons in sorted(broken.items())}


def _rule(expectation: Any) -> RowRule:
    kind = type(expectation).__name__
    reason = expectation.meta["reason"]
    if kind in UNIQUENESS:
        compound = kind == "ExpectCompoundColumnsToBeUnique"
        key = tuple(expectation.column_list) if compound else (expectation.column,)
        return RowRule(reason, key, None, compound)
    if kind == "ExpectColumnValuesToNotBeNull":
        breaks = is_missing
    else:
        test = _value_test(kind, expectation)

        def breaks(value: Any) -> bool:
            return not is_missing(value) and test(value)

    return RowRule(reason, (expectation.column,), breaks)


def _duplicates(rule: RowRule, rows: list[dict[str, Any]]) -> list[int]:
    """Positions of the rows whose key another row shares (a lone null key is no duplicate)."""
    keys = [tuple(row[c] for c in rule.key) for row in rows]
    counts = Counter(keys)
    return [
        i
        for i, key in enumerate(keys)
        if counts[key] > 1 and (rule.compound or not is_missing(key[0]))
    ]


def _value_test(kind: str, expectation: Any) -> Callable[[Any], bool]:
    if kind == "ExpectColumnValuesToBeBetween":
        low, high = expectation.min_value, expectation.max_value
        return lambda v: (low is not None and v < low) or (high is not None and v > high)
    if kind == "ExpectColumnValuesToBeInSet":
        allowed = set(expectation.value_set)
        return lambda v: v not in allowed
    if kind == "ExpectColumnValuesToNotMatchRegex":
        pattern = re.compile(expectation.regex)
        return lambda v: bool(pattern.search(str(v)))
    raise TypeError(f"{kind}: a row rule the online check does not know; add it here")
