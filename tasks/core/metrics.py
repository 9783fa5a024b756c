"""Evaluation metrics for a binary classifier: pure functions on numpy arrays, no I/O.

Training, distillation and promotion all compare models through these numbers, so each one is
computed in exactly one place. scikit-learn is imported inside the functions: `loopline --help`
and the stages that never evaluate must not pay for it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

LOG_LOSS_EPS = 1e-7
WARMUP_CALLS = 3


def _binary_inputs(y_true: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Flatten and check labels (0/1) and scores (finite, in [0, 1]) of equal, non-zero length."""
    y = np.asarray(y_true).ravel()
    s = np.asarray(scores, dtype=float).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} values but scores has {s.size}")
    if y.size == 0:
        raise ValueError("cannot evaluate an empty array")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"y_true must hold only 0 and 1, found {np.unique(y)[:10].tolist()}")
    if not np.isfinite(s).all() or s.min() < 0.0 or s.max() > 1.0:
        raise ValueError("scores must be finite probabilities in [0, 1]")
    return y.astype(int), s


def _bin_index(s: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width bin of each score over [0, 1]; a score of exactly 1 falls in the last bin."""
    return np.minimum((s * bins).astype(int), bins - 1)


def _calibration_bins(y: np.ndarray, s: np.ndarray, bins: int) -> list[dict[str, float]]:
    """The one binning behind both `calibration_table` and ECE: equal width over [0, 1].

    Bin i holds scores in [i/bins, (i+1)/bins); a score of exactly 1 falls in the last bin.
    """
    if bins < 1:
        raise ValueError(f"calibration bins must be >= 1, got {bins}")
    index = _bin_index(s, bins)
    counts = np.bincount(index, minlength=bins)
    score_sums = np.bincount(index, weights=s, minlength=bins)
    positive_sums = np.bincount(index, weights=y, minlength=bins)
    table = []
    for i in map(int, np.flatnonzero(counts)):
        table.append(
            {
                "bin_lower": i / bins,
                "bin_upper": (i + 1) / bins,
                "mean_score": float(score_sums[i] / counts[i]),
                "observed_rate": float(positive_sums[i] / counts[i]),
                "count": int(counts[i]),
            }
        )
    return table


def calibration_error(table: list[dict]) -> float:
    """ECE of a `calibration_table`: |mean score - observed rate| per bin, weighted by count."""
    total = sum(row["count"] for row in table)
    return float(
        sum(row["count"] * abs(row["mean_score"] - row["observed_rate"]) for row in table) / total
    )


def calibration_table(y_true: Any, scores: Any, bins: int) -> list[dict]:
    """Per-bin mean score vs observed positive rate (empty bins omitted), for reports and plots."""
    y, s = _binary_inputs(y_true, scores)
    return _calibration_bins(y, s, bins)


def classification_metrics(
    y_true: Any, scores: Any, threshold: float, calibration_bins: int
) -> dict[str, float]:
    """Ranking, probability and threshold metrics of one model on one labelled set.

    With a single class in `y_true` the ranking metrics (ROC AUC, average precision) are
    undefined and come back as NaN rather than raising, so a tiny or drifted batch still gets a
    report. Precision with no predicted positives is 0, as in scikit-learn's `zero_division=0`.
    """
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    y, s = _binary_inputs(y_true, scores)
    both_classes = np.unique(y).size == 2
    predicted = s >= threshold
    actual = y == 1
    tp = int(np.sum(predicted & actual))
    fp = int(np.sum(predicted & ~actual))
    fn = int(np.sum(~predicted & actual))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    clipped = np.clip(s, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    return {
        "roc_auc": float(roc_auc_score(y, s)) if both_classes else float("nan"),
        "pr_auc": float(average_precision_score(y, s)) if both_classes else float("nan"),
        "log_loss": float(log_loss(y, clipped, labels=[0, 1])),
        "brier": float(brier_score_loss(y, s, pos_label=1)),
        "ece": calibration_error(_calibration_bins(y, s, calibration_bins)),
        "accuracy": float(np.mean(predicted == actual)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "positive_rate": float(np.mean(actual)),
        "rows": float(y.size),
    }


def agreement(scores_a: Any, scores_b: Any, threshold: float) -> dict[str, float]:
    """How closely two models (e.g. teacher and distilled student) behave on the same rows."""
    a = np.asarray(scores_a, dtype=float).ravel()
    b = np.asarray(scores_b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"scores_a has {a.size} values but scores_b has {b.size}")
    if a.size == 0:
        raise ValueError("cannot compare empty score arrays")
    # Pearson is undefined when either side is constant; NaN says so instead of a warning.
    constant = np.ptp(a) == 0 or np.ptp(b) == 0  # std of equal floats can be 1e-17, not 0
    return {
        "agreement": float(np.mean((a >= threshold) == (b >= threshold))),
        "score_correlation": float("nan") if constant else float(np.corrcoef(a, b)[0, 1]),
        "mean_abs_diff": float(np.mean(np.abs(a - b))),
    }


def latency_profile(
    predict: Callable[[int, int], object], rows: int, batch_size: int, repeats: int
) -> dict[str, float]:
    """Per-batch latency percentiles and throughput of `predict(start, stop)` over row slices.

    Batches are consecutive full slices of `rows`; when the next one would run past the end it
    starts again at row 0, so every timed call scores the same number of rows. That number,
    min(batch_size, rows), is what `batch_size` in the result reports. The first
    WARMUP_CALLS calls (lazy init, caches, allocator) are not timed.
    """
    if rows < 1 or batch_size < 1 or repeats < 1:
        raise ValueError(
            f"rows, batch_size and repeats must be >= 1, got {rows}, {batch_size}, {repeats}"
        )
    size = min(batch_size, rows)
    start = 0
    seconds = []
    for call in range(WARMUP_CALLS + repeats):
        if start + size > rows:
            start = 0
        began = time.perf_counter()
        predict(start, start + size)
        elapsed = time.perf_counter() - began
        if call >= WARMUP_CALLS:
            seconds.append(elapsed)
        start += size
    ms = np.asarray(seconds) * 1000.0
    mean_s = float(np.mean(seconds))
    return {
        "latency_ms_p50": float(np.percentile(ms, 50)),
        "latency_ms_p95": float(np.percentile(ms, 95)),
        "latency_ms_p99": float(np.percentile(ms, 99)),
        "rows_per_s": float(size / mean_s) if mean_s > 0 else float("inf"),
        "batch_size": float(size),
    }


def _rank_auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney rank sum (ties share their mean rank), as scikit-learn."""
    from scipy.stats import rankdata

    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def paired_auc_difference(
    y_true: Any, scores_a: Any, scores_b: Any, resamples: int, confidence: float, seed: int
) -> dict[str, float]:
    """AUC(a) - AUC(b) on the same rows, with a paired bootstrap percentile interval.

    Both models are scored on each resample of the rows, so what the rows have in common (an
    easy or a hard day) cancels out and only the models' difference varies. Seeded: the same
    rows and scores give the same interval."""
    y, a = _binary_inputs(y_true, scores_a)
    _, b = _binary_inputs(y_true, scores_b)
    rng = np.random.default_rng(seed)
    draws = np.empty(resamples)
    for i in range(resamples):
        rows = rng.integers(0, y.size, y.size)
        draws[i] = _rank_auc(y[rows], a[rows]) - _rank_auc(y[rows], b[rows])
    draws = draws[np.isfinite(draws)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail]) if draws.size else (np.nan, np.nan)
    return {
        "difference": _rank_auc(y, a) - _rank_auc(y, b),
        "low": float(low),
        "high": float(high),
        "se": float(draws.std(ddof=1)) if draws.size > 1 else float("nan"),
        "resamples": float(draws.size),
    }


def paired_ece_difference(
    y_true: Any,
    scores_a: Any,
    scores_b: Any,
    groups: Any,
    bins: int,
    resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, float]:
    """ECE(a) - ECE(b) on the same rows, with a paired bootstrap interval that resamples whole
    `groups` (days): a day's base rate moves every row of it together (one stormy day lifts them
    all), so days, not rows, are the units calibration varies by. Seeded, like the AUC's."""
    y, a = _binary_inputs(y_true, scores_a)
    _, b = _binary_inputs(y_true, scores_b)
    _, group = np.unique(np.asarray(groups), return_inverse=True)
    days = int(group.max()) + 1

    def per_day_bins(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cell = group * bins + _bin_index(s, bins)
        shape = (days, bins)
        return (
            np.bincount(cell, minlength=days * bins).reshape(shape),
            np.bincount(cell, weights=s, minlength=days * bins).reshape(shape),
            np.bincount(cell, weights=y, minlength=days * bins).reshape(shape),
        )

    tables = [per_day_bins(a), per_day_bins(b)]

    def ece(weights: np.ndarray, table: tuple[np.ndarray, ...]) -> np.ndarray:
        counts, score_sums, positive_sums = (weights @ part for part in table)
        return np.abs(score_sums - positive_sums).sum(axis=-1) / counts.sum(axis=-1)

    rng = np.random.default_rng(seed)
    draws = rng.multinomial(days, np.full(days, 1 / days), size=resamples).astype(float)
    differences = ece(draws, tables[0]) - ece(draws, tables[1])
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail])
    whole = np.ones(days)
    return {
        "difference": float(ece(whole, tables[0]) - ece(whole, tables[1])),
        "low": float(low),
        "high": float(high),
        "groups": float(days),
    }


@dataclass(frozen=True)
class TurnTimings:
    """Seconds per call of each model, timed in turns: call i of every model met the same
    moment of the machine."""

    seconds: dict[str, np.ndarray]
    rounds: int

    def best_round_p95_ms(self, name: str) -> float:
        """The lowest p95 of a round: the absolute figure, least disturbed by a burst."""
        return (
            float(
                min(np.percentile(r, 95) for r in np.array_split(self.seconds[name], self.rounds))
            )
            * 1000.0
        )

    def ratio(self, name: str, reference: str, confidence: float) -> RatioInterval:
        """The median of the per-turn ratios `name` / `reference`, with its interval: on 2 cores
        kept busy by 6 spinning processes, two copies of one model read 1.00-1.02 this way over
        150 turns in 16 runs, where the ratio of their p95s read 0.02-85; over 15 turns at load
        8 the median alone read 0.64-1.98 (the interval covered 1 each time)."""
        return RatioInterval.of(self.seconds[name] / self.seconds[reference], confidence)


@dataclass(frozen=True)
class RatioInterval:
    """A median ratio and the distribution-free interval of the median: the order statistics
    that cover it with `confidence` (binomial, no assumption on how noise is spread)."""

    median: float
    low: float
    high: float
    turns: int

    @classmethod
    def of(cls, ratios: np.ndarray, confidence: float) -> RatioInterval:
        ordered = np.sort(ratios)
        n = len(ordered)
        below = np.cumsum([math.comb(n, k) / 2**n for k in range(n)])  # P(Binomial(n, 1/2) <= k)
        rank = max(int(np.searchsorted(below, (1 - confidence) / 2, side="right")) - 1, 0)
        return cls(float(np.median(ordered)), float(ordered[rank]), float(ordered[-1 - rank]), n)

    @classmethod
    def point(cls, ratio: float) -> RatioInterval:
        """One figure without spread (two p95s, where no turns were timed)."""
        return cls(ratio, ratio, ratio, 1)


def timed_in_turns(
    predicts: dict[str, Callable[[int, int], object]],
    rows: int,
    batch_size: int,
    repeats: int,
    rounds: int,
) -> TurnTimings:
    """Every model called on the same slice of `min(batch_size, rows)` rows, one after another
    (the order alternating each turn), `rounds` x `repeats` turns after WARMUP_CALLS untimed
    calls each (lazy init, caches, allocator)."""
    size = min(batch_size, rows)
    names = list(predicts)
    for name in names:
        for _ in range(WARMUP_CALLS):
            predicts[name](0, size)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    start = 0
    for turn in range(rounds * repeats):
        if start + size > rows:
            start = 0
        for name in names if turn % 2 == 0 else reversed(names):
            began = time.perf_counter()
            predicts[name](start, start + size)
            seconds[name].append(time.perf_counter() - began)
        start += size
    return TurnTimings({n: np.asarray(v) for n, v in seconds.items()}, rounds)
