"""Stage `promote`: the champion/challenger gate, forced promotion, rollback and status.

A candidate becomes `champion` only if it passes every check in `promote` (params.yaml); the
former champion keeps the alias `previous`. A candidate that fails becomes `challenger` and the
champion stays. Both AUCs are measured on the same most recent holdout (the candidate's test
days), each model scored through its registered MLflow artifact. Every decision is recorded on
the model version (tags) and appended to the promotion history under one lock.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from tasks.core import tags as tag
from tasks.core.config import Params, PromoteConfig
from tasks.core.io import write_json
from tasks.core.layout import CANDIDATE, FEATURE_TABLE_REPORT, metrics_file, validation_report
from tasks.core.metrics import classification_metrics
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
from tasks.registry.history import Decision, locked
from tasks.registry.ledger import charge_version
from tasks.registry.versions import load_registered

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    value: float | bool | None
    threshold: float | bool | None
    detail: str

    def reason(self) -> str:
        return f"{self.name}: {self.detail}"


def gate_checks(
    cfg: PromoteConfig,
    *,
    validation_passed: bool,
    candidate_auc: float,
    champion_auc: float | None,
    teacher_auc: float | None,
    metrics: dict[str, Any],
) -> list[Check]:
    """Every check of the gate, pure: values in, verdicts with readable details out."""
    checks = [
        Check(
            "validation",
            validation_passed,
            validation_passed,
            True,
            "training data passed validation"
            if validation_passed
            else "training data failed validation",
        ),
        Check(
            "auc_floor",
            candidate_auc >= cfg.min_auc,
            candidate_auc,
            cfg.min_auc,
            f"holdout AUC {candidate_auc:.4f} vs floor {cfg.min_auc}",
        ),
    ]
    if champion_auc is not None:
        bar = champion_auc - cfg.max_auc_drop
        checks.append(
            Check(
                "auc_vs_champion",
                candidate_auc >= bar,
                candidate_auc,
                bar,
                f"holdout AUC {candidate_auc:.4f} vs champion {champion_auc:.4f} - margin "
                f"{cfg.max_auc_drop} = {bar:.4f}",
            )
        )
    if teacher_auc is not None:
        share = candidate_auc / teacher_auc
        checks.append(
            Check(
                "teacher_auc_share",
                share >= cfg.min_teacher_auc_share,
                share,
                cfg.min_teacher_auc_share,
                f"keeps {share:.3f} of the teacher's AUC {teacher_auc:.4f}",
            )
        )
    latency, size, ece = metrics["latency_ms_p95"], metrics["artifact_bytes"], metrics["ece"]
    checks += [
        Check(
            "latency_p95",
            latency <= cfg.max_latency_ms_p95,
            latency,
            cfg.max_latency_ms_p95,
            f"p95 {latency:.2f} ms per batch vs budget {cfg.max_latency_ms_p95} ms",
        ),
        Check(
            "artifact_size",
            size <= cfg.max_artifact_bytes,
            size,
            cfg.max_artifact_bytes,
            f"{size:,} bytes vs budget {cfg.max_artifact_bytes:,}",
        ),
        Check(
            "calibration",
            ece <= cfg.max_ece,
            ece,
            cfg.max_ece,
            f"expected calibration error {ece:.4f} vs bound {cfg.max_ece}",
        ),
    ]
    return checks


def holdout_auc(
    params: Params, name: str, version: str, holdout: pd.DataFrame, features: list[str]
) -> float:
    """AUC of a registered version on the holdout, scored through its registered artifact,
    checksums verified, as serving loads it."""

    model, featurizer, _ = load_registered(params.tracking, name, version)
    scores = predict_proba(model, featurizer, holdout[features])
    target = holdout[params.dataset.target.name].to_numpy()
    return classification_metrics(target, scores, 0.5, 10)["roc_auc"]


def gate_version(
    params: Params,
    version: str,
    holdout: pd.DataFrame,
    metrics: dict[str, Any],
    teacher_auc: float | None,
    validation_passed: bool,
) -> Decision:
    """Judge `version` against the champion of the moment and act on the verdict, atomically."""
    cfg, name, client = params.promote, params.registry.model_name, registry_client(params)
    features = params.dataset.features.names
    require_version(client, name, version)
    with locked(cfg.history_db) as conn:
        champion = alias_version(
            client, name, tag.CHAMPION
        )  # read under the lock: no stale champion
        candidate_auc = holdout_auc(params, name, version, holdout, features)
        champion_auc = None
        if champion is not None and champion != version:
            champion_auc = holdout_auc(params, name, champion, holdout, features)
        checks = gate_checks(
            cfg,
            validation_passed=validation_passed,
            candidate_auc=candidate_auc,
            champion_auc=champion_auc,
            teacher_auc=teacher_auc,
            metrics=metrics,
        )
        failed = [c.reason() for c in checks if not c.passed]
        if failed:
            client.set_registered_model_alias(name, tag.CHALLENGER, version)
            decision = Decision(
                name, version, "rejected", failed, compared_to=champion, champion_after=champion
            )
        else:
            move_champion(client, name, version, champion)
            decision = Decision(
                name,
                version,
                "promoted",
                [c.reason() for c in checks],
                compared_to=champion,
                champion_after=version,
            )
        decision.checks = [asdict(c) for c in checks]
        decision.actor = actor()
        return record_decision(client, conn, decision)


def run_promote(params: Params) -> Decision:
    """The stage: record what the candidate the last distillation registered cost to train,
    then gate it."""

    metrics_dir = params.evaluate.metrics_dir
    candidate = json.loads(metrics_file(metrics_dir, CANDIDATE).read_text())
    teacher = json.loads(metrics_file(metrics_dir, "teacher").read_text())
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
        teacher_auc=None if candidate["variant"] == "teacher" else teacher["roc_auc"],
        validation_passed=bool(validation["success"]),
    )
    write_json(params.promote.decision_path, decision.as_dict())
    verb = "promoted to champion" if decision.promoted else "kept as challenger"
    log.info(
        "promote: %s v%s %s; %s",
        decision.model_name,
        decision.version,
        verb,
        "; ".join(decision.reasons),
    )
    return decision
