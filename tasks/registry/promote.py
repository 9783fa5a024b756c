"""Stage `promote`: the champion/challenger gate, acting on its verdict.

A candidate becomes `champion` only if it passes every check of the gate (the rules:
tasks/registry/gate.py); the former champion keeps the alias `previous`. A candidate that fails
becomes `challenger` and the champion stays. Both models are scored on the same holdout (the
candidate's test days), each through its registered artifact with its own feature list, and
timed in turns in this process. Every decision is recorded on the model version (tags) and
appended to the promotion history under one lock.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from tasks.core import tags as tag
from tasks.core.columns import EVENT_DATE
from tasks.core.config import Params
from tasks.core.io import write_metrics
from tasks.core.layout import CANDIDATE, FEATURE_TABLE_REPORT, metrics_file, validation_report
from tasks.core.metrics import (
    classification_metrics,
    paired_auc_difference,
    paired_ece_difference,
    timed_in_turns,
)
from tasks.data.split import TrainingRecord, load_split
from tasks.model.predict import predict_proba
from tasks.registry.aliases import (
    actor,
    alias_version,
    move_champion,
    record_decision,
    registry_client,
    require_version,
)
from tasks.registry.gate import (
    INSUFFICIENT,
    PROMOTED,
    Check,
    Difference,
    Holdout,
    Measured,
    gate_checks,
    verdict,
)
from tasks.registry.history import Decision, locked
from tasks.registry.ledger import charge_version
from tasks.registry.versions import load_registered

log = logging.getLogger(__name__)


class _Loaded:
    """A registered version, loaded as serving loads it, and its rows of the holdout: its own
    feature columns, so a change of features in params leaves older models scorable."""

    def __init__(self, params: Params, version: str, holdout: pd.DataFrame) -> None:
        self.version = version
        self.model, self.featurizer, _ = load_registered(
            params.tracking, params.registry.model_name, version
        )
        self.missing = [c for c in self.featurizer.columns if c not in holdout.columns]
        self.rows = None if self.missing else holdout[self.featurizer.columns]

    @functools.cached_property
    def scores(self) -> np.ndarray:
        return predict_proba(self.model, self.featurizer, self.rows)


def measure_side_by_side(
    params: Params, models: list[_Loaded], target: np.ndarray
) -> dict[str, Measured]:
    """AUC and ECE of each model on the holdout, and their latency per batch of
    `evaluate.latency_batch_size` raw rows (featurization included), timed call by call in
    turns in this process: each one's best round p95, and the candidate's median per-turn
    ratio to the champion (the first model is the candidate)."""
    cfg = params.evaluate

    def predict(model: _Loaded) -> Callable[[int, int], object]:
        return lambda start, stop: predict_proba(
            model.model, model.featurizer, model.rows.iloc[start:stop]
        )

    timings = timed_in_turns(
        {m.version: predict(m) for m in models},
        len(target),
        cfg.latency_batch_size,
        cfg.latency_repeats,
        params.promote.timing.rounds,
    )
    measured = {}
    candidate, others = models[0].version, [m.version for m in models[1:]]
    for model in models:
        figures = classification_metrics(target, model.scores, 0.5, cfg.calibration_bins)
        measured[model.version] = Measured(
            model.version,
            figures["roc_auc"],
            figures["ece"],
            timings.best_round_p95_ms(model.version),
            timings.ratio(candidate, others[0], params.promote.evidence.confidence)
            if model.version == candidate and others
            else None,
        )
    return measured


def judge(
    params: Params,
    version: str,
    champion: str | None,
    holdout: pd.DataFrame,
    artifact_bytes: int,
    teacher_auc: float | None,
    validation_passed: bool,
    baseline_auc: float | None = None,
) -> list[Check]:
    """The gate's checks of `version` against `champion` (None: a first model), measured now,
    acting on nothing."""
    cfg = params.promote
    target = holdout[params.dataset.target.name].to_numpy()
    models = [_Loaded(params, version, holdout)]
    if champion is not None and champion != version:
        models.append(_Loaded(params, champion, holdout))
        if models[1].missing:
            log.warning(
                "promote: champion v%s needs column(s) %s this holdout lacks (the features "
                "changed): v%s is judged on the absolute floors, as a first model",
                champion,
                models[1].missing,
                version,
            )
            models.pop()
    load = os.getloadavg()[0]
    measured = measure_side_by_side(params, models, target)
    difference = ece_difference = None
    if len(models) == 2:
        evidence = cfg.evidence
        draws = (evidence.resamples, evidence.confidence, evidence.seed)
        pair = (target, models[0].scores, models[1].scores)
        difference = Difference.of(paired_auc_difference(*pair, *draws))
        ece_difference = Difference.of(
            paired_ece_difference(
                *pair, holdout[EVENT_DATE], params.evaluate.calibration_bins, *draws
            )
        )
    checks = gate_checks(
        cfg,
        validation_passed=validation_passed,
        candidate=measured[version],
        artifact_bytes=artifact_bytes,
        teacher_auc=teacher_auc,
        holdout=Holdout(len(target), int(target.sum())),
        champion=measured[models[1].version] if len(models) == 2 else None,
        difference=difference,
        ece_difference=ece_difference,
    )
    if baseline_auc is not None:
        checks.append(_beside_baseline(measured[version].auc, baseline_auc))
    return [
        *checks,
        Check("load_average", True, load, None, f"1-minute load {load:.2f} while timing"),
    ]


def _beside_baseline(candidate_auc: float, baseline_auc: float) -> Check:
    """Informational: the gradient-boosted baseline's test AUC beside the candidate's, so the
    record shows whether the served network keeps up with the plain model."""
    return Check(
        "baseline_auc",
        True,
        candidate_auc,
        baseline_auc,
        f"holdout AUC {candidate_auc:.4f} vs the baseline's {baseline_auc:.4f} "
        f"({candidate_auc - baseline_auc:+.4f})",
    )


def gate_version(
    params: Params,
    version: str,
    holdout: pd.DataFrame,
    metrics: dict[str, Any],
    teacher_auc: float | None,
    validation_passed: bool,
    baseline_auc: float | None = None,
) -> Decision:
    """Judge `version` against the champion of the moment and act on the verdict, atomically."""
    name, client = params.registry.model_name, registry_client(params)
    require_version(client, name, version)
    with locked(params.promote.history_db) as conn:
        champion = alias_version(client, name, tag.CHAMPION)  # under the lock: never stale
        checks = judge(
            params,
            version,
            champion,
            holdout,
            int(metrics["artifact_bytes"]),
            teacher_auc,
            validation_passed,
            baseline_auc,
        )
        kind = verdict(checks)
        if kind == PROMOTED:
            move_champion(client, name, version, champion)
            reasons = [c.reason() for c in checks if c.name != "load_average"]
        else:
            client.set_registered_model_alias(name, tag.CHALLENGER, version)
            reasons = [c.reason() for c in checks if not c.passed]
        decision = Decision(
            name,
            version,
            kind,
            reasons,
            compared_to=champion,
            champion_after=version if kind == PROMOTED else champion,
        )
        decision.checks = [asdict(c) for c in checks]
        decision.actor = actor()
        return record_decision(client, conn, decision)


def run_promote(params: Params) -> Decision:
    """The stage: record what the candidate the last distillation registered cost to train,
    then gate it."""

    metrics_dir = params.evaluate.metrics_dir
    candidate = json.loads(metrics_file(metrics_dir, CANDIDATE).read_text())
    validation = json.loads(
        validation_report(params.validate_.report_dir, FEATURE_TABLE_REPORT).read_text()
    )
    record = TrainingRecord.load(params.train.model_dir)
    holdout = load_split(params, record.window, record.windows).test
    version = str(candidate["registry_version"])
    charge_version(params, version, record.parent_run_id)  # whatever the verdict: it was paid
    decision = gate_version(
        params,
        version,
        holdout,
        candidate,
        teacher_auc=None if candidate["variant"] == "teacher" else candidate["teacher_roc_auc"],
        validation_passed=bool(validation["success"]),
        baseline_auc=candidate.get("baseline_roc_auc"),
    )
    write_metrics(params.promote.decision_path, decision.as_dict())
    verb = {
        PROMOTED: "promoted to champion",
        INSUFFICIENT: "kept as challenger: the holdout cannot tell it from the champion",
    }.get(decision.decision, "kept as challenger")
    log.info(
        "promote: %s v%s %s; %s",
        decision.model_name,
        decision.version,
        verb,
        "; ".join(decision.reasons),
    )
    return decision
