"""Nightly scoring: one day's batch → validated → scored by the champion → predictions file.

The champion is resolved once per run (alias → version → artifacts), rows that break the
nightly contract go to the quarantine with a reason, scoring runs in chunks so memory stays
bounded, and the predictions file is replaced atomically: a rerun of a day replaces, never
duplicates, and a failed run leaves the previous file as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tasks.core.columns import MODEL_NAME, MODEL_VERSION, PREDICTION, SCORE, SCORED_AT
from tasks.core.config import Params
from tasks.core.docs import CYCLICAL_VALUES
from tasks.core.errors import ValidationGateError
from tasks.core.io import exclusive_lock, sweep_temps, write_parquet
from tasks.core.layout import day_lock, day_paths
from tasks.core.metrics import agreement
from tasks.data.nightly_validation import validate_batches
from tasks.serving.champion import Champion, resolve_champion, score_frame

if TYPE_CHECKING:
    from tasks.data.validate import Outcome

log = logging.getLogger(__name__)


def shadow_score(
    params: Params, day: dt.date, champion: Champion, challenger: Champion | None
) -> dict[str, Any] | None:
    """Score the day's served rows with the challenger too (never served): its own file and
    how far it agrees with the champion. None when there is no challenger or no served row."""

    if challenger is None or challenger.version == champion.version:
        return None
    paths = day_paths(params, day)
    ids = params.dataset.id_columns
    served = pd.read_parquet(paths["predictions"], columns=[*ids, SCORE])
    if served.empty:  # a day without data: nothing served, nothing to compare
        return None
    rows = pd.read_parquet(paths["incoming"]).merge(served[ids], on=ids)
    served = rows[ids].merge(served, on=ids)  # same order as the rows scored below
    scores, _ = score_frame(challenger, rows, params.score.chunk_rows, where=str(paths["incoming"]))
    shadow = rows[ids].assign(
        **{
            SCORE: scores,
            PREDICTION: (scores >= challenger.threshold).astype(np.int8),
            MODEL_NAME: challenger.name,
            MODEL_VERSION: challenger.version,
        }
    )
    write_parquet(paths["shadow"], shadow)
    compared = agreement(served[SCORE].to_numpy(), scores, champion.threshold)
    return {
        "challenger_version": challenger.version,
        "rows": len(shadow),
        "shadow": str(paths["shadow"]),
        **compared,
    }


@contextlib.contextmanager
def days_locked(params: Params, days: list[dt.date]) -> Iterator[None]:
    """One run at a time per batch day: a second run of a day waits for the first, then
    replaces its results, so the day ends with one predictions file and one monitoring run.
    Days are locked in date order (overlapping ranges cannot deadlock); once held, temp files
    a killed run left beside the day's outputs are removed."""
    with contextlib.ExitStack() as stack:
        for day in sorted(days):
            stack.enter_context(
                exclusive_lock(
                    day_lock(params, day),
                    f"score {day}: waiting for another run of the same day to finish",
                )
            )
            paths = day_paths(params, day)
            for output in ("predictions", "quarantine", "shadow"):
                for stale in sweep_temps(paths[output]):
                    log.info("score %s: removed %s, left by a killed run", day, stale)
        yield


def check_unseen(oov: dict[str, int], rows: int, max_fraction: float, source: Path) -> None:
    """Fail the batch when a categorical is mostly values the champion never saw: the unseen
    bucket is for the odd new value, and a column of them (every carrier new) means the
    upstream coding changed, so every score would be garbage. A cyclical column (a month) kept
    as a categorical meets this every new month: the message points to the docs on it."""
    broken = [
        f"{col}: {count} of {rows} values never seen in training "
        f"({count / rows:.0%} > score.max_unseen_fraction {max_fraction:.0%}); "
        "check the upstream coding or retrain on it (a month, weekday or other cyclical or "
        f"ordinal value belongs in features.numeric: {CYCLICAL_VALUES})"
        for col, count in oov.items()
        if rows and count / rows > max_fraction
    ]
    if broken:
        raise ValidationGateError(str(source), broken)


def score_day(
    params: Params,
    day: dt.date,
    champion: Champion | None = None,
    outcome: Outcome | None = None,
) -> dict[str, Any]:
    """Quarantine and score one day's batch; returns a summary of what happened. `outcome` is
    the day's verdict when `validate_batches` already checked it with other days."""

    started = time.perf_counter()
    paths = day_paths(params, day)
    if outcome is None:
        outcome = validate_batches(params, {day: paths["incoming"]})[day]
    write_parquet(paths["quarantine"], outcome.quarantined)
    if not outcome.success:
        raise ValidationGateError(str(paths["incoming"]), outcome.failures)

    champion = champion or resolve_champion(params)
    clean = outcome.clean
    if len(clean):
        scores, oov, empty = _score_rows(params, day, champion, clean, paths["incoming"])
    else:
        scores, oov, empty = np.empty(0, dtype=np.float32), {}, []
    ids = [c for c in params.dataset.id_columns if c in clean.columns]
    predictions = clean.reindex(columns=[*ids, params.dataset.event_time])
    predictions[SCORE] = scores
    predictions[PREDICTION] = (scores >= champion.threshold).astype(np.int8)
    predictions[MODEL_NAME] = champion.name
    predictions[MODEL_VERSION] = champion.version
    predictions[SCORED_AT] = pd.Timestamp.now(tz="UTC")
    write_parquet(paths["predictions"], predictions)
    summary = {
        "date": day.isoformat(),
        "rows": outcome.rows,
        "scored": len(predictions),
        "quarantined": len(outcome.quarantined),
        "model_name": champion.name,
        "model_version": champion.version,
        "positive_rate_predicted": float(predictions[PREDICTION].mean()) if len(scores) else 0.0,
        "mean_score": float(scores.mean()) if len(scores) else 0.0,
        "out_of_vocabulary": oov,
        "empty_columns": empty,
        "seconds": time.perf_counter() - started,
        "predictions": str(paths["predictions"]),
    }
    if outcome.rows:
        log.info(
            "score %s: %d %s scored by %s v%s, %d quarantined → %s",
            day,
            len(predictions),
            params.dataset.rows_word(len(predictions)),
            champion.name,
            champion.version,
            len(outcome.quarantined),
            paths["predictions"],
        )
    else:
        log.info(
            "score %s: no %s in %s (a day without data): nothing to score",
            day,
            params.dataset.rows_word(0),
            paths["incoming"],
        )
    return summary


def _score_rows(
    params: Params, day: dt.date, champion: Champion, clean: pd.DataFrame, source: Path
) -> tuple[np.ndarray, dict[str, int], list[str]]:
    """The champion's scores of a day's clean rows, the unseen categories and the features
    with no value at all (scored on the training medians, warned). The champion reads its own
    feature columns, which may differ from params' (features changed since it was trained)."""
    scores, oov = score_frame(champion, clean, params.score.chunk_rows, where=str(source))
    empty = [c for c in champion.featurizer.columns if clean[c].isna().all()]
    # A feature params list reaches here only under score.empty_columns: score (otherwise the
    # gate failed); one params no longer list but the champion reads is not gated.
    if empty:
        log.warning(
            "score %s: feature(s) %s have no value at all: scored on the training medians and "
            "missing-value indicators; check the upstream feed",
            day,
            empty,
        )
    check_unseen(oov, len(clean), params.score.max_unseen_fraction, source)
    return scores, oov, empty


def _row_weighted(records: list[dict[str, Any]], key: str, weight: str) -> float:
    total = sum(r[weight] for r in records)
    return sum(r[key] * r[weight] for r in records) / total if total else 0.0


def combine_days(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """One summary for a run over several days (the replay's tick, a backfill): counts summed,
    rates weighted by scored rows, each day kept under `days`. One day comes back unchanged."""
    if len(summaries) == 1:
        return summaries[0]
    oov: dict[str, int] = {}
    for summary in summaries:
        for column, count in summary["out_of_vocabulary"].items():
            oov[column] = oov.get(column, 0) + count
    return {
        **summaries[-1],
        "start": summaries[0]["date"],
        **{k: sum(s[k] for s in summaries) for k in ("rows", "scored", "quarantined", "seconds")},
        "positive_rate_predicted": _row_weighted(summaries, "positive_rate_predicted", "scored"),
        "mean_score": _row_weighted(summaries, "mean_score", "scored"),
        "out_of_vocabulary": oov,
        "empty_columns": sorted({c for s in summaries for c in s["empty_columns"]}),
        "predictions": [s["predictions"] for s in summaries],
        "days": summaries,
    }


def combine_shadows(shadows: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The challenger's agreement over several days, weighted by rows (None: no challenger)."""
    present = [s for s in shadows if s is not None]
    if len(shadows) == 1 or not present:
        return present[0] if present else None
    return {
        **present[-1],
        "rows": sum(s["rows"] for s in present),
        **{
            k: _row_weighted(present, k, "rows")
            for k in ("agreement", "score_correlation", "mean_abs_diff")
        },
        "shadow": [s["shadow"] for s in present],
        "days": present,
    }
