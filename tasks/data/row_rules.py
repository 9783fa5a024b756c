"""The nightly contract's row rules on a handful of rows, without a Great Expectations pass.

A GX pass costs about a second whatever the rows, which is the whole latency budget of an
online request. The rules are the very expectations `build_contract` makes (same columns,
bounds, sets and `meta.reason`), evaluated here with pandas, so a request's row breaks exactly
the rule it would break in a nightly batch and is answered with that rule's reason.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pandas as pd

from tasks.core.config import Params
from tasks.data.contract import Contract
from tasks.data.nightly_validation import nightly_contract

# Online rows are filed under their own event day: the nightly window rule is open (as wide as
# pandas timestamps go).
OPEN_WINDOW = (dt.date(1700, 1, 1), dt.date(2200, 12, 31))


def online_contract(params: Params) -> Contract:
    """The nightly contract with its day window open (built once: GX objects are not cheap)."""
    return nightly_contract(params, *OPEN_WINDOW)


def row_reasons(frame: pd.DataFrame, contract: Contract) -> pd.Series:
    """The reasons each row of `frame` breaks (joined by "; "), by row label; rows that break
    nothing are absent. Columns missing from `frame` are the caller's to refuse first."""
    broken: list[tuple[Any, str]] = []
    for expectation in contract.row_level:
        bad = _breaks(expectation, frame)
        reason = expectation.meta["reason"]
        broken += [(label, reason) for label in frame.index[bad]]
    if not broken:
        return pd.Series(dtype=object)
    pairs = pd.DataFrame(broken, columns=["row", "reason"])
    return pairs.groupby("row", sort=False)["reason"].agg("; ".join)


def _breaks(expectation: Any, frame: pd.DataFrame) -> pd.Series:
    """Which rows break one expectation (nulls pass every rule but not-null, as in GX)."""
    kind = type(expectation).__name__
    if kind == "ExpectCompoundColumnsToBeUnique":
        return frame.duplicated(subset=list(expectation.column_list), keep=False)
    values = frame[expectation.column]
    present = values.notna()
    if kind == "ExpectColumnValuesToNotBeNull":
        return ~present
    if kind == "ExpectColumnValuesToBeUnique":
        return present & values.duplicated(keep=False)
    if kind == "ExpectColumnValuesToBeBetween":
        low, high = expectation.min_value, expectation.max_value
        return present & ~values.between(low, high)
    if kind == "ExpectColumnValuesToBeInSet":
        return present & ~values.isin(list(expectation.value_set))
    if kind == "ExpectColumnValuesToNotMatchRegex":
        pattern = re.compile(expectation.regex)
        return present & values.map(lambda v: bool(pattern.search(str(v))))
    raise TypeError(f"{kind}: a row rule the online check does not know; add it here")
