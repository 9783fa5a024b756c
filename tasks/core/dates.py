"""Calendar days as the CLI and the batch files name them (YYYY-MM-DD)."""

from __future__ import annotations

import datetime as dt
import re

from tasks.core.errors import LooplineError

DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_date(text: str) -> dt.date:
    """A real calendar date in YYYY-MM-DD, checked before any path is built from it."""
    if not DATE_PATTERN.fullmatch(text or ""):
        raise LooplineError(f"--date {text!r}: expected a date as YYYY-MM-DD, e.g. 2013-04-01")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise LooplineError(f"--date {text!r}: not a real calendar date") from None


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every calendar day from `start` to `end`, both included."""
    if end < start:
        raise LooplineError(f"--end {end} is before --start {start}; swap them")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
