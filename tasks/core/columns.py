"""The columns loopline adds to the data set's own tables, each named once.

A data set may not use these names for a column that reaches those tables (an id, the event
time, the label, a feature): the config refuses them with what to rename, instead of a crash
deep inside ingest or scoring (docs/your-data.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# The feature table's partition column: the event's calendar day (YYYY-MM-DD).
EVENT_DATE = "event_date"
# The predictions files' columns beside the ids and the event time.
SCORE = "score"  # a probability
PREDICTION = "prediction"  # 0/1 at the model's threshold
MODEL_NAME = "model_name"
MODEL_VERSION = "model_version"
SCORED_AT = "scored_at"
# Quarantined rows: the rule each broke.
REASON = "reason"

RESERVED = {
    EVENT_DATE: "the feature table's day partition",
    SCORE: "the model's score in the predictions files",
    PREDICTION: "the 0/1 prediction in the predictions files",
    MODEL_NAME: "the scoring model's name in the predictions files",
    MODEL_VERSION: "the scoring model's version in the predictions files",
    SCORED_AT: "the scoring time in the predictions files",
    REASON: "the broken rule of a quarantined row",
}


def renamed_hint(missing: list[str], columns: Iterable[Any]) -> str:
    """' (did you mean ...)' for missing columns the table has under a close name (another
    case, a letter or two off): the usual way a renamed export breaks the contract."""
    import difflib

    present = [str(c) for c in columns]
    by_case = {c.casefold(): c for c in present}
    guesses = {}
    for col in missing:
        if col.casefold() in by_case:  # `Temp` for `temp`: difflib alone scores it 0.75
            guesses[col] = by_case[col.casefold()]
        elif close := difflib.get_close_matches(col, present, n=1, cutoff=0.8):
            guesses[col] = close[0]
    if not guesses:
        return ""
    return " (did you mean " + ", ".join(f"{v!r} for {k!r}" for k, v in guesses.items()) + "?)"
