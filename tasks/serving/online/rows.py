"""A request's JSON records → typed rows, each row either kept or refused with its reason.

The request as a whole is refused only when it cannot be read (not a record or a list of
records, too many rows); a row with a missing column, a value of the wrong type or a broken
contract rule is refused alone, and the rows beside it are still scored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tasks.core.config import Params
from tasks.data.contract import Contract, numeric_codes
from tasks.data.row_rules import row_reasons


class RequestError(ValueError):
    """The request as a whole cannot be read: answered 4xx with this one line."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Rows:
    """A request's rows: the scorable ones (index = position in the request) and the refused."""

    frame: pd.DataFrame
    refused: dict[int, str]
    size: int


def records_of(body: Any, max_rows: int, noun: str) -> list[Any]:
    """The records of a request body: one JSON object, or a list of them."""
    records = [body] if isinstance(body, dict) else body
    if not isinstance(records, list) or not records:
        raise RequestError(422, f"expected a {noun} as a JSON object, or a non-empty list of them")
    if len(records) > max_rows:
        raise RequestError(
            413, f"{len(records)} {noun}s in one request, over api.max_request_rows {max_rows}"
        )
    return records


def parse_rows(params: Params, contract: Contract, records: list[Any]) -> Rows:
    """Typed rows, each checked for its columns, its value types and the contract's rules."""
    dataset = params.dataset
    required = list(
        dict.fromkeys([*dataset.id_columns, dataset.event_time, *dataset.features.names])
    )
    kept: dict[int, dict[str, Any]] = {}
    refused: dict[int, str] = {}
    for position, record in enumerate(records):
        problem = _typed(params, record, required)
        if isinstance(problem, str):
            refused[position] = problem
        else:
            kept[position] = problem
    frame = pd.DataFrame.from_dict(kept, orient="index", columns=required)
    for column in dataset.features.numeric:
        frame[column] = pd.to_numeric(frame[column]).astype("float64")
    frame[dataset.event_time] = pd.to_datetime(frame[dataset.event_time])
    reasons = row_reasons(frame, contract)
    refused.update({int(k): f"breaks the contract: {v}" for k, v in reasons.items()})
    return Rows(frame.drop(index=reasons.index), dict(sorted(refused.items())), len(records))


def _typed(params: Params, record: Any, required: list[str]) -> dict[str, Any] | str:
    """The record with its values typed, or why it cannot be (one line)."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    missing = [c for c in required if c not in record]
    if missing:
        return f"missing column(s) {', '.join(missing)}"
    dataset, rules = params.dataset, params.validate_.rules
    row = {c: record[c] for c in required}
    for column in dataset.features.numeric:
        value = row[column]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"{column}: expected a number or null, got {value!r}"
        row[column] = math.nan if value is None else value
    for column in dataset.features.categorical:
        allowed = (str, int, float) if numeric_codes(rules.get(column)) else (str,)
        value = row[column]
        if value is not None and (isinstance(value, bool) or not isinstance(value, allowed)):
            return f"{column}: expected text or null, got {value!r}"
    for column in dataset.id_columns:
        if not isinstance(row[column], str | int) or isinstance(row[column], bool):
            return f"{column}: an id must be text or an integer, got {row[column]!r}"
    when = row[dataset.event_time]
    try:
        stamp = pd.Timestamp(when) if isinstance(when, str) else None
    except ValueError:
        stamp = None
    if stamp is None or pd.isna(stamp):
        return f"{dataset.event_time}: expected an ISO 8601 date-time, got {when!r}"
    row[dataset.event_time] = stamp.tz_localize(None) if stamp.tzinfo else stamp
    return row
