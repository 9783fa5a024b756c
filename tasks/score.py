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
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tasks import tracking
from tasks.config import Params
from tasks.errors import LooplineError, ValidationGateError
from tasks.featurize import Featurizer
from tasks.io import exclusive_lock, sweep_temps, write_parquet

if TYPE_CHECKING:
    from tasks.validate import Outcome

log = logging.getLogger(__name__)

DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")


class NoChampionError(LooplineError):
    """Nothing to score with: no version holds the `champion` alias yet."""


def parse_date(text: str) -> dt.date:
    """A real calendar date in YYYY-MM-DD, checked before any path is built from it."""
    if not DATE_PATTERN.fullmatch(text or ""):
        raise LooplineError(f"--date {text!r}: expected a date as YYYY-MM-DD, e.g. 2013-04-01")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise LooplineError(f"--date {text!r}: not a real calendar date") from None


@dataclass(frozen=True)
class Champion:
    """The serving model, resolved once: its registry identity, network and featurizer."""

    name: str
    version: str
    model: Any
    featurizer: Featurizer
    threshold: float
    run_id: str
    window: str | None = None  # "start..end" of the training window, from the version's tags


def resolve_champion(params: Params) -> Champion:
    from tasks.promote import CHAMPION

    champion = resolve_alias(params, CHAMPION)
    if champion is None:
        raise NoChampionError(
            f"{params.registry.model_name}: no champion yet; run `loopline train` (or "
            "`dvc repro`) to train and promote a model first"
        )
    return champion


def resolve_alias(params: Params, alias: str) -> Champion | None:
    """The version behind `alias`, loaded once from its registered artifacts (None if unset).

    The alias is read once: the version it names is immutable, so a promotion moving the alias
    meanwhile cannot mix two models. Files that fail their registration checksums are refused
    (ModelIntegrityError) and store faults are retried (TrackingStoreError once they persist).
    """
    from tasks.promote import alias_version
    from tasks.registry import load_registered

    name = params.registry.model_name
    version = alias_version(tracking.client(params.tracking), name, alias)
    if version is None:
        return None
    model, featurizer, details = load_registered(params.tracking, name, version)
    threshold = float(details.tags.get("loopline.threshold", 0.5))
    return Champion(
        name,
        version,
        model,
        featurizer,
        threshold,
        details.run_id,
        details.tags.get("loopline.window"),
    )


def shadow_score(
    params: Params, day: dt.date, champion: Champion, challenger: Champion | None
) -> dict[str, Any] | None:
    """Score the day's served rows with the challenger too (never served): its own file and
    how far it agrees with the champion. None when there is no challenger."""
    from tasks.metrics import agreement

    if challenger is None or challenger.version == champion.version:
        return None
    paths = day_paths(params, day)
    ids = params.dataset.id_columns
    served = pd.read_parquet(paths["predictions"], columns=[*ids, "score"])
    rows = pd.read_parquet(paths["incoming"]).merge(served[ids], on=ids)
    served = rows[ids].merge(served, on=ids)  # same order as the rows scored below
    scores, _ = score_frame(challenger, rows, params.score.chunk_rows)
    shadow = rows[ids].assign(
        score=scores,
        prediction=(scores >= challenger.threshold).astype(np.int8),
        model_name=challenger.name,
        model_version=challenger.version,
    )
    write_parquet(paths["shadow"], shadow)
    compared = agreement(served["score"].to_numpy(), scores, champion.threshold)
    return {
        "challenger_version": challenger.version,
        "rows": len(shadow),
        "shadow": str(paths["shadow"]),
        **compared,
    }


def day_paths(params: Params, day: dt.date) -> dict[str, Path]:
    cfg = params.score
    stem = f"{day.isoformat()}.parquet"
    return {
        "incoming": cfg.incoming_dir / stem,
        "labels": cfg.labels_dir / stem,
        "predictions": cfg.predictions_dir / stem,
        "quarantine": cfg.quarantine_dir / stem,
        "shadow": cfg.shadow_dir / stem,
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
                    params.score.predictions_dir / f".{day.isoformat()}.lock",
                    f"score {day}: waiting for another run of the same day to finish",
                )
            )
            paths = day_paths(params, day)
            for output in ("predictions", "quarantine", "shadow"):
                for stale in sweep_temps(paths[output]):
                    log.info("score %s: removed %s, left by a killed run", day, stale)
        yield


def score_frame(
    champion: Champion, frame: pd.DataFrame, chunk_rows: int
) -> tuple[np.ndarray, dict[str, int]]:
    """Scores in chunks of `chunk_rows` (the featurized tensors never exceed one chunk), plus
    how many values of each categorical fell into the out-of-vocabulary bucket."""
    import torch

    scores = np.empty(len(frame), dtype=np.float32)
    oov: dict[str, int] = dict.fromkeys(champion.featurizer.categorical, 0)
    with torch.inference_mode():
        for start in range(0, len(frame), chunk_rows):
            encoded = champion.featurizer.transform(frame.iloc[start : start + chunk_rows])
            logits = champion.model(
                torch.from_numpy(encoded.categorical), torch.from_numpy(encoded.numeric)
            )
            scores[start : start + len(encoded)] = torch.sigmoid(logits).numpy()
            for col, count in encoded.oov_counts.items():
                oov[col] += count
    return scores, oov


def check_unseen(oov: dict[str, int], rows: int, max_fraction: float, source: Path) -> None:
    """Fail the batch when a categorical is mostly values the champion never saw: the unseen
    bucket is for the odd new value, and a column of them (every carrier new) means the
    upstream coding changed, so every score would be garbage."""
    broken = [
        f"{col}: {count} of {rows} values never seen in training "
        f"({count / rows:.0%} > score.max_unseen_fraction {max_fraction:.0%}); "
        "check the upstream coding or retrain on it"
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
    from tasks.nightly_validation import validate_batches

    started = time.perf_counter()
    paths = day_paths(params, day)
    if outcome is None:
        outcome = validate_batches(params, {day: paths["incoming"]})[day]
    write_parquet(paths["quarantine"], outcome.quarantined)
    if not outcome.success:
        raise ValidationGateError(str(paths["incoming"]), outcome.failures)

    champion = champion or resolve_champion(params)
    clean = outcome.clean
    empty = [c for c in params.dataset.features.names if len(clean) and clean[c].isna().all()]
    if empty:  # only reached under score.empty_columns: score (otherwise the gate failed)
        log.warning(
            "score %s: feature(s) %s have no value at all: scored on the training medians and "
            "missing-value indicators; check the upstream feed",
            day,
            empty,
        )
    scores, oov = score_frame(champion, clean, params.score.chunk_rows)
    check_unseen(oov, len(clean), params.score.max_unseen_fraction, paths["incoming"])
    ids = [c for c in params.dataset.id_columns if c in clean.columns]
    predictions = clean[[*ids, params.dataset.event_time]].copy()
    predictions["score"] = scores
    predictions["prediction"] = (scores >= champion.threshold).astype(np.int8)
    predictions["model_name"] = champion.name
    predictions["model_version"] = champion.version
    predictions["scored_at"] = pd.Timestamp.now(tz="UTC")
    write_parquet(paths["predictions"], predictions)
    summary = {
        "date": day.isoformat(),
        "rows": outcome.rows,
        "scored": len(predictions),
        "quarantined": len(outcome.quarantined),
        "model_name": champion.name,
        "model_version": champion.version,
        "positive_rate_predicted": float(predictions["prediction"].mean()) if len(scores) else 0.0,
        "mean_score": float(scores.mean()) if len(scores) else 0.0,
        "out_of_vocabulary": oov,
        "empty_columns": empty,
        "seconds": time.perf_counter() - started,
        "predictions": str(paths["predictions"]),
    }
    log.info(
        "score %s: %d rows scored by %s v%s, %d quarantined → %s",
        day,
        len(predictions),
        champion.name,
        champion.version,
        len(outcome.quarantined),
        paths["predictions"],
    )
    return summary


def write_day_batch(params: Params, day: dt.date) -> dict[str, Path]:
    """The simulation clock's upstream job: `day`'s incoming batch (features, no label) and the
    labels of the day before, which have arrived by then. Both from the feature table."""
    from tasks.ingest import EVENT_DATE
    from tasks.io import read_partitions

    target = params.dataset.target.name
    paths = day_paths(params, day)
    yesterday = day - dt.timedelta(days=1)
    rows = read_partitions(
        params.ingest.features_dir, EVENT_DATE, yesterday.isoformat(), day.isoformat()
    )
    today = rows[rows[EVENT_DATE] == day.isoformat()]
    if today.empty:
        raise LooplineError(
            f"{params.ingest.features_dir}: no rows for {day}; run `loopline ingest`"
        )
    write_parquet(paths["incoming"], today.drop(columns=[target, EVENT_DATE]))
    labelled = rows[rows[EVENT_DATE] == yesterday.isoformat()]
    if not labelled.empty:
        write_parquet(
            day_paths(params, yesterday)["labels"], labelled[[*params.dataset.id_columns, target]]
        )
    return paths


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
