"""What a retrain would buy now, measured: the cost-aware retrain policy's evidence.

Drift says the data moved, not whether a new model would score better (on the flights the drift
share sits at .34-.41 all year and score drift is over its threshold on every tick). The probe
asks the question directly and cheaply, with the gradient-boosted baseline's recipe: one model
knows what the champion knew (labelled days up to the end of its window), one knows everything
labelled before the probe days; both score the newest labelled days, paired. Their AUC
difference, with a bootstrap interval, is what the data since the champion's window is worth;
the recipe is the same on both sides, so the network's own level cancels out.

The policy (Mahadevan & Mathioudakis 2024, cost-aware retraining) retrains when that gain is
real (the interval's lower bound above zero), material (at least `retrain.min_gain`: in a world
that did not change, more labels still add a little) and worth more over a model's life in
production than a retrain costs.

The probe looks again at every tick while the champion serves, and each look is a fresh chance
of a false alarm: a world that did not change, probed at 16 ticks at 95 %, retrained once on
+0.0167 [+0.0025, +0.0316] that was noise. So the k-th look at one champion (k counted in
disjoint probe spans since its window, not in ticks: the nightly cadence looks more often at
the same days) is judged at level alpha * 6 / (pi^2 k^2); the levels sum to alpha, so over a
champion's whole life the chance of any false alarm stays within 1 - `promote.evidence.
confidence`. A gain worth having grows with the days and still gets through.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.columns import EVENT_DATE
from tasks.core.config import Params
from tasks.core.io import fingerprint, read_partitions
from tasks.core.metrics import paired_auc_difference
from tasks.model.baseline import baseline_matrix, baseline_model
from tasks.model.featurize import Featurizer
from tasks.registry import ledger

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainValue:
    """The probe's verdict on retraining now; `reason` says it in one line."""

    evidence: bool
    gain: float | None = None
    low: float | None = None
    high: float | None = None
    probe_rows: int = 0
    benefit: float | None = None
    retrain_cost: float | None = None
    worth_it: bool = False
    reason: str = ""
    cpu_s: float | None = None  # what the probe itself cost, measured by its caller
    look: int = 0  # this look at the champion, in disjoint probe spans since its window
    confidence: float | None = None  # of the interval, after correcting for the looks

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def training_cost(params: Params, version: str) -> float:
    """What `version` cost to train, as the gate charged it (0 where it was never charged: any
    real gain is then worth a retrain)."""
    return ledger.registered_version_costs(params, version)["training_cost"] or 0.0


def expected_benefit(params: Params, gain: float) -> float:
    """Money an AUC gain is worth over one model's life at the production volume in `cost`:
    points of AUC x value per point per 1M predictions x predictions in a model's life."""
    production = params.cost.production
    predictions = production.rows_per_night * production.nights_per_model_life
    return gain * 100 * production.value_per_auc_point * predictions / 1e6


def probe_start(
    daily: pd.DataFrame,
    end: dt.date,
    after: dt.date,
    min_days: int,
    min_rows: int,
    min_class_rows: int,
) -> dt.date | None:
    """The first probe day: back from `end` over the days with labels (`daily`: rows and
    positives per date) until at least `min_days` days, `min_rows` rows and `min_class_rows` of
    each class are in; a small volume takes more days. None when that would reach into the older
    half of the labelled days after `after` (the champion's window): the fresh model must know
    as many new days as the probe scores, or there is nothing to measure yet."""
    newer = daily[(daily.index > after) & (daily.index <= end)].sort_index(ascending=False)
    if newer.empty:
        return None
    rows, positives = newer["rows"].cumsum(), newer["positives"].cumsum()
    span = (end - newer.index.to_series()).map(lambda d: d.days + 1)
    enough = (span >= min_days) & (rows >= min_rows)
    enough &= (positives >= min_class_rows) & (rows - positives >= min_class_rows)
    if not enough.any():
        return None
    start = enough.idxmax()  # the newest day that completes the probe
    return start if (end - start).days + 1 <= (end - after).days // 2 else None


def look_number(probe_first: dt.date, probe_end: dt.date, champion_window_end: dt.date) -> int:
    """Which look at the champion this probe is: the disjoint probe spans that fit in the days
    since its window, less the one span the fresh model must learn from (the first probe that
    can decide is look 1)."""
    span = (probe_end - probe_first).days + 1
    return max(1, (probe_end - champion_window_end).days // span - 1)


def look_confidence(confidence: float, look: int) -> float:
    """The interval's level at the `look`-th look: alpha * 6 / (pi^2 look^2) of false alarm, so
    the levels of all looks together sum to alpha = 1 - confidence."""
    return 1 - (1 - confidence) * 6 / (np.pi**2 * look**2)


def percent(level: float) -> str:
    """A level near 1 with the digits that tell it from 100 %: 99.938 %, not 100.00 %."""
    digits = max(2, int(np.ceil(-np.log10(max((1 - level) * 100, 1e-12)))) + 1)
    return f"{level * 100:.{digits}f}%"


def retrain_value(
    params: Params, day: dt.date, champion_window_end: dt.date, retrain_cost: float
) -> RetrainValue:
    """The probe at `day`: labels up to the day before have arrived. Not enough evidence while
    the labelled days since the champion's window cannot fill both a probe (rows and both
    classes, as the gate needs: `promote.evidence`) and an equal stretch to learn from."""
    cfg, evidence, target = params.retrain, params.promote.evidence, params.dataset.target.name
    probe_end = day - dt.timedelta(days=1)
    history = _history(params, probe_end)
    dates = pd.to_datetime(history[EVENT_DATE]).dt.date
    daily = pd.DataFrame({"rows": 1, "positives": history[target]}).groupby(dates.values).sum()
    first = probe_start(
        daily,
        probe_end,
        champion_window_end,
        cfg.probe_days,
        evidence.min_rows,
        evidence.min_class_rows,
    )
    newer = daily[daily.index > champion_window_end]
    if first is None:
        return RetrainValue(
            False,
            reason=f"not enough evidence yet: {int(newer['rows'].sum()):,} labelled "
            f"{params.dataset.plural_noun} ({int(newer['positives'].sum()):,} positive) since the "
            f"champion's window ended {champion_window_end}; the probe needs at least "
            f"{evidence.min_rows:,} ({evidence.min_class_rows:,} of each class, "
            "promote.evidence) in its newest days and as many days again before them",
        )
    probe = history[dates >= first]
    labels = probe[target].to_numpy()
    stale = _probe_model(params, history[dates <= champion_window_end])
    fresh = _probe_model(params, history[dates < first])
    figures = paired_auc_difference(
        labels,
        fresh(probe),
        stale(probe),
        evidence.resamples,
        evidence.confidence,
        evidence.seed,
    )
    look = look_number(first, probe_end, champion_window_end)
    confidence = look_confidence(evidence.confidence, look)
    # A level this far out is beyond what the bootstrap's tails resolve: its standard error
    # with the normal quantile (the stdlib's: scipy.stats costs 0.5 s to import here).
    gain = figures["difference"]
    half_width = NormalDist().inv_cdf(1 - (1 - confidence) / 2) * figures["se"]
    low, high = gain - half_width, gain + half_width
    benefit = expected_benefit(params, gain)
    real = low > 0 and gain >= cfg.min_gain
    worth = real and benefit > retrain_cost
    money = params.cost.currency
    rows = f"{len(probe):,} {params.dataset.plural_noun}"
    verdict = (
        "worth it"
        if worth
        else "not worth it"
        if real
        else f"too small a gain (retrain.min_gain {cfg.min_gain})"
        if low > 0
        else "not enough evidence of a gain"
    )
    return RetrainValue(
        True,
        gain,
        low,
        high,
        len(probe),
        benefit,
        retrain_cost,
        worth,
        f"retrain value: {verdict}: the labels since {champion_window_end} add "
        f"{gain:+.4f} AUC [{low:+.4f}, {high:+.4f}] ({percent(confidence)}: look {look} at the "
        f"champion) on {rows} of {first}..{probe_end}, worth {benefit:.4g} {money} over a "
        f"model's life vs {retrain_cost:.4g} {money} per retrain",
        look=look,
        confidence=confidence,
    )


def _history(params: Params, end: dt.date) -> pd.DataFrame:
    return read_partitions(
        params.validate_.validated_dir, EVENT_DATE, str(params.train.window.start), str(end)
    )


def _probe_model(params: Params, frame: pd.DataFrame) -> Callable[[pd.DataFrame], np.ndarray]:
    """The baseline's recipe fitted on `frame`, its last `train.validation_days` days stopping
    it early; a scorer of raw rows. The champion's side is the same fit from tick to tick
    until the champion changes: it is kept, keyed by what it was fitted on."""
    key = (params.model_dump_json(), fingerprint(frame))
    if key not in _FITTED:
        _FITTED.clear()  # one champion at a time: never more than one model held
        _FITTED[key] = _fit_probe(params, frame)
    return _FITTED[key]


_FITTED: dict[tuple[str, str], Callable[[pd.DataFrame], np.ndarray]] = {}


def _fit_probe(params: Params, frame: pd.DataFrame) -> Callable[[pd.DataFrame], np.ndarray]:
    target, features = params.dataset.target.name, params.dataset.features
    dates = pd.to_datetime(frame[EVENT_DATE]).dt.date
    stop_from = dates.max() - dt.timedelta(days=params.train.validation_days - 1)
    train, validation = frame[dates < stop_from], frame[dates >= stop_from]
    featurizer = Featurizer.fit(
        train, features.categorical, features.numeric, params.train.min_category_count
    )
    model = baseline_model(params.baseline, featurizer, params.train.seed)
    model.fit(
        baseline_matrix(featurizer, train),
        train[target].to_numpy(),
        X_val=baseline_matrix(featurizer, validation),
        y_val=validation[target].to_numpy(),
    )
    return lambda rows: model.predict_proba(baseline_matrix(featurizer, rows))[:, 1]
