"""The retrain decision: the policy triggers it (cost-aware by default: the probe in
tasks/monitoring/value.py; or drift and a falling AUC, or the calendar); a cooldown and too few
new labels block it. Pure decision logic plus a small state file that remembers the last
retrain."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from tasks.core.config import Params, RetrainConfig
from tasks.core.io import write_json
from tasks.data.labels import read_labels
from tasks.monitoring.value import RetrainValue


@dataclass
class RetrainDecision:
    date: str
    retrain: bool
    triggers: list[str] = field(default_factory=list)
    blocked_by: list[str] = field(default_factory=list)
    until: str | None = None
    policy: str | None = None
    signals: list[str] = field(default_factory=list)
    value: dict[str, Any] | None = None  # the cost-aware probe's figures, where it ran

    @property
    def reasons(self) -> list[str]:
        return self.triggers + [f"blocked: {b}" for b in self.blocked_by] + self.signals

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reasons": self.reasons}


def decide(
    cfg: RetrainConfig,
    day: dt.date,
    drift: dict[str, Any],
    new_labelled_rows: int,
    last_retrain: dt.date | None,
    since: dt.date,
    value: RetrainValue | None = None,
) -> RetrainDecision:
    """The policy's triggers retrain unless something blocks them; every reason is kept, both
    kinds. `since`: the last retrain, or the end of the champion's window; `value`: the
    cost-aware probe (None where it did not run)."""
    triggers = _triggers(cfg, day, drift, since, value)
    blocked = blockers(cfg, day, new_labelled_rows, last_retrain) if triggers else []
    until = (day - dt.timedelta(days=1)).isoformat()
    return RetrainDecision(
        day.isoformat(),
        bool(triggers) and not blocked,
        triggers,
        blocked,
        until,
        cfg.policy,
        _signals(cfg, drift, value),
        None if value is None else value.as_dict(),
    )


def blockers(
    cfg: RetrainConfig, day: dt.date, new_labelled_rows: int, last_retrain: dt.date | None
) -> list[str]:
    """What stops a retrain whatever triggered it: the cooldown and too few new labels (the
    cost-aware probe runs only where nothing blocks, so a blocked tick costs nothing)."""
    blocked = []
    if last_retrain is not None and (day - last_retrain).days < cfg.cooldown_days:
        blocked.append(
            f"cooldown: last retrain {last_retrain}, {(day - last_retrain).days} of "
            f"{cfg.cooldown_days} days ago"
        )
    if new_labelled_rows < cfg.min_new_labelled_rows:
        blocked.append(
            f"too few new labels: {new_labelled_rows:,} labelled rows since the "
            f"champion's window (need {cfg.min_new_labelled_rows:,})"
        )
    return blocked


def _triggers(
    cfg: RetrainConfig,
    day: dt.date,
    drift: dict[str, Any],
    since: dt.date,
    value: RetrainValue | None,
) -> list[str]:
    if cfg.policy == "never":
        return []
    if cfg.policy == "calendar":
        new_month = (day.year, day.month) != (since.year, since.month)
        return [f"calendar: first tick of {day:%Y-%m} since {since}"] if new_month else []
    if cfg.policy == "cost_aware":
        return [value.reason] if value is not None and value.worth_it else []
    return _threshold_triggers(cfg, drift)


def _signals(cfg: RetrainConfig, drift: dict[str, Any], value: RetrainValue | None) -> list[str]:
    """What the policy saw but did not act on: the drift triggers under the cost-aware policy
    (informative, not deciding) and a probe that found no case for a retrain."""
    seen = []
    if cfg.policy != "threshold":
        seen += [f"seen, not deciding: {t}" for t in _threshold_triggers(cfg, drift)]
    if value is not None and not value.worth_it:
        seen.append(value.reason)
    return seen


def _threshold_triggers(cfg: RetrainConfig, drift: dict[str, Any]) -> list[str]:
    triggers = []
    share = drift.get("drift_share", 0.0)
    if share >= cfg.max_drift_share:
        triggers.append(
            f"feature drift: {share:.0%} of features drifted (threshold {cfg.max_drift_share:.0%})"
        )
    prediction = (drift.get("prediction_drift") or {}).get("score")
    if prediction is not None and prediction >= cfg.max_prediction_drift:
        triggers.append(
            f"prediction drift: score drift {prediction:.3f} (threshold {cfg.max_prediction_drift})"
        )
    drop = drift.get("auc_drop")
    if drop is not None and drop >= cfg.max_auc_drop:
        triggers.append(
            f"performance: live AUC {drift['live_auc']:.4f} is {drop:.4f} below the "
            f"champion's test AUC (threshold {cfg.max_auc_drop})"
        )
    return triggers


def new_labelled_rows(params: Params, after: dt.date, before: dt.date) -> int:
    """Valid labelled rows of the days strictly between `after` and `before` (what a retrain
    adds); rows set aside by the label checks do not count."""

    total, day = 0, after + dt.timedelta(days=1)
    while day < before:
        labels = read_labels(params, day)
        total += 0 if labels is None else len(labels.valid)
        day += dt.timedelta(days=1)
    return total


def last_retrain(params: Params) -> dt.date | None:
    path = params.retrain.state_path
    if not path.exists():
        return None
    value = json.loads(path.read_text(encoding="utf-8")).get("last_retrain")
    return dt.date.fromisoformat(value) if value else None


def remember_retrain(params: Params, decision: RetrainDecision) -> None:
    path = params.retrain.state_path
    state = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"retrains": []}
    state["last_retrain"] = decision.date
    state["retrains"].append(decision.as_dict())
    write_json(path, state)


def champion_window_end(window_tag: str | None, fallback: dt.date) -> dt.date:
    """The end of a version's training window from its `loopline.window` tag (start..end)."""
    if not window_tag or ".." not in window_tag:
        return fallback
    return dt.date.fromisoformat(window_tag.split("..")[1])
