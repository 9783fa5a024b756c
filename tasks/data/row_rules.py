"""The nightly contract's row rules on a request's rows, without a Great Expectations pass.

A GX pass costs about a second whatever the rows, the whole latency budget of an online
request, and even pandas costs milliseconds per rule on one row. The rules are the very
expectations `build_contract` makes (same columns, bounds, sets and `meta.reason`), evaluated
here on plain values, so a request's row breaks exactly the rule it would break in a nightly
batch and is answered with that rule's reason.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from tasks.core.config import Params
from tasks.data.contract import Contract
from tasks.data.nightly_validation import nightly_contract

# Online rows are filed under their own event day: the nightly window rule is open (as wide as
# pandas timestamps go).
OPEN_WINDOW = (dt.date(1700, 1, 1), dt.date(2200, 12, 31))


def online_contract(params: Params) -> Contract:
    """The nightly contract with its day window open (built once: GX objects are not cheap)."""
    return nightly_contract(params, *OPEN_WINDOW)


def is_missing(value: Any) -> bool:
    """Null as GX sees it: None, NaN, NaT."""
    return value is None or value != value  # NaN and NaT are not equal to themselves


def row_reasons(
    rows: list[dict[str, Any]], contract: Contract, columns: set[str]
) -> dict[int, str]:
    """The reasons each row breaks (joined by "; "), by position; rows that break nothing are
    absent. Only rules on `columns` apply (those the rows are read for: a feature no loaded
    model reads is not asked for), and each of them must be in every row (the caller refuses
    first)."""
    broken: dict[int, list[str]] = {}
    for expectation in contract.row_level:
        if not set(_columns(expectation)) <= columns:
            continue
        for position in _breaking(expectation, rows):
            broken.setdefault(position, []).append(expectation.meta["reason"])
    return {position: "; ".join(reasons) for position, reasons in sorted(broken.items())}


def _columns(expectation: Any) -> list[str]:
    """The columns one row rule reads."""
    compound = type(expectation).__name__ == "ExpectCompoundColumnsToBeUnique"
    return list(expectation.column_list) if compound else [expectation.column]


def _breaking(expectation: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Positions of the rows that break one expectation (nulls pass all but not-null, as in GX)."""
    kind = type(expectation).__name__
    if kind in ("ExpectColumnValuesToBeUnique", "ExpectCompoundColumnsToBeUnique"):
        compound = kind == "ExpectCompoundColumnsToBeUnique"
        columns = _columns(expectation)
        keys = [tuple(row[c] for c in columns) for row in rows]
        counts = Counter(keys)
        return [
            i
            for i, key in enumerate(keys)
            if counts[key] > 1 and (compound or not is_missing(key[0]))
        ]
    values = [row[expectation.column] for row in rows]
    if kind == "ExpectColumnValuesToNotBeNull":
        return [i for i, value in enumerate(values) if is_missing(value)]
    breaks = _value_test(kind, expectation)
    return [i for i, value in enumerate(values) if not is_missing(value) and breaks(value)]


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
