"""Stage `promote`: the champion/challenger gate, forced promotion, rollback and status.

A candidate becomes `champion` only if it passes every check in `promote` (params.yaml); the
former champion keeps the alias `previous`. A candidate that fails becomes `challenger` and the
champion stays. Both AUCs are measured on the same most recent holdout (the candidate's test
days), each model scored through its registered MLflow artifact. Every decision is recorded on
the model version (tags) and appended to the promotion history under one lock.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from tasks import tracking
from tasks.config import Params, PromoteConfig
from tasks.errors import LooplineError
from tasks.io import write_json
from tasks.promotion_history import Decision, append, locked, recent

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"


class PromotionError(LooplineError):
    """A promotion command cannot be carried out (unknown version, nothing to roll back to)."""


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


# What the registry answers for an alias (or a model) that does not exist yet.
NOT_FOUND = {"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"}


def alias_version(client: Any, name: str, alias: str) -> str | None:
    """The version behind `alias`, None when unset; a store that cannot answer is an error,
    never mistaken for "no champion"."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in NOT_FOUND:
            return None
        raise


def holdout_auc(
    params: Params, name: str, version: str, holdout: pd.DataFrame, features: list[str]
) -> float:
    """AUC of a registered version on the holdout, scored through its registered artifact,
    checksums verified, as serving loads it."""
    from tasks.metrics import classification_metrics
    from tasks.predict import predict_proba
    from tasks.registry import load_registered

    model, featurizer, _ = load_registered(params.tracking, name, version)
    scores = predict_proba(model, featurizer, holdout[features])
    target = holdout[params.dataset.target.name].to_numpy()
    return classification_metrics(target, scores, 0.5, 10)["roc_auc"]


def _actor() -> str:
    try:
        return os.environ.get("LOOPLINE_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _move_champion(client: Any, name: str, version: str, champion: str | None) -> None:
    if champion is not None and champion != version:
        client.set_registered_model_alias(name, PREVIOUS, champion)
    client.set_registered_model_alias(name, CHAMPION, version)
    if alias_version(client, name, CHALLENGER) == version:
        client.delete_registered_model_alias(name, CHALLENGER)


def _record(client: Any, conn: Any, decision: Decision) -> Decision:
    """Tags on the model version (and its run) plus a row in the history, inside the lock."""
    tags = {
        "loopline.decision": decision.decision,
        "loopline.decision_reasons": json.dumps(decision.reasons)[:4900],
        "loopline.decided_at": decision.at,
        "loopline.decided_by": decision.actor,
        "loopline.compared_to": decision.compared_to or "",
    }
    for key, value in tags.items():
        client.set_model_version_tag(decision.model_name, decision.version, key, value)
    run_id = client.get_model_version(decision.model_name, decision.version).run_id
    if run_id:
        client.set_tag(run_id, "loopline.promotion", decision.decision)
    append(conn, decision)
    return decision


def _require_version(client: Any, name: str, version: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(name, version)
    except MlflowException:
        raise PromotionError(f"{name} has no version {version}; see `loopline status`") from None


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
    _require_version(client, name, version)
    with locked(cfg.history_db) as conn:
        champion = alias_version(client, name, CHAMPION)  # read under the lock: no stale champion
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
            client.set_registered_model_alias(name, CHALLENGER, version)
            decision = Decision(
                name, version, "rejected", failed, compared_to=champion, champion_after=champion
            )
        else:
            _move_champion(client, name, version, champion)
            decision = Decision(
                name,
                version,
                "promoted",
                [c.reason() for c in checks],
                compared_to=champion,
                champion_after=version,
            )
        decision.checks = [asdict(c) for c in checks]
        decision.actor = _actor()
        return _record(client, conn, decision)


def force_promote(params: Params, version: str, reason: str) -> Decision:
    """A human override: champion moves to `version` whatever the checks say, recorded as such."""
    name, client = params.registry.model_name, registry_client(params)
    _require_version(client, name, version)
    with locked(params.promote.history_db) as conn:
        champion = alias_version(client, name, CHAMPION)
        return _install(
            client, conn, name, version, champion, "forced", f"forced by hand: {reason}"
        )


def rollback(params: Params, reason: str, to_version: str | None = None) -> Decision:
    """Champion back to `to_version`, or to the version aliased `previous`."""
    name, client = params.registry.model_name, registry_client(params)
    with locked(params.promote.history_db) as conn:
        champion = alias_version(client, name, CHAMPION)
        target = to_version or alias_version(client, name, PREVIOUS)
        if target is None:
            raise PromotionError(f"{name}: no previous champion to roll back to; pass --to VERSION")
        _require_version(client, name, target)
        if target == champion:
            raise PromotionError(f"{name}: version {target} is already the champion")
        return _install(
            client,
            conn,
            name,
            target,
            champion,
            "rolled_back",
            f"rollback from {champion}: {reason}",
        )


def _install(
    client: Any, conn: Any, name: str, version: str, champion: str | None, kind: str, reason: str
) -> Decision:
    """Make `version` champion by hand (forced or rolled back), recorded with its reason."""
    _move_champion(client, name, version, champion)
    decision = Decision(
        name, version, kind, [reason], compared_to=champion, champion_after=version, actor=_actor()
    )
    return _record(client, conn, decision)


def registry_client(params: Params) -> Any:
    """The registry client promotion uses: every call retried on transient store faults."""
    return tracking.client(params.tracking)


def status(params: Params, limit: int = 10) -> dict[str, Any]:
    """Champion, challenger and previous with their gate metrics and costs, plus the last
    decisions."""
    from tasks.accounting import version_costs

    name, client = params.registry.model_name, registry_client(params)
    history = recent(params.promote.history_db, name, limit=200)

    def describe(alias: str) -> dict[str, Any] | None:
        version = alias_version(client, name, alias)
        if version is None:
            return None
        gated = next((d for d in history if d.version == version and d.checks), None)
        metrics = {c["name"]: c["value"] for c in gated.checks} if gated else {}
        tags = client.get_model_version(name, version).tags
        return {
            "version": version,
            "variant": tags.get("loopline.variant"),
            "decision": tags.get("loopline.decision"),
            "metrics": metrics,
            "cost": version_costs(tags, metrics.get("latency_p95"), params.cost),
        }

    cfg = params.cost
    return {
        "model_name": name,
        "cost": {
            "currency": cfg.currency,
            "cpu_hour": cfg.cpu_hour,
            "gpu_hour": cfg.gpu_hour,
            "production": cfg.production.model_dump(),
        },
        CHAMPION: describe(CHAMPION),
        CHALLENGER: describe(CHALLENGER),
        PREVIOUS: describe(PREVIOUS),
        "history": [
            {
                "version": d.version,
                "decision": d.decision,
                "reasons": d.reasons,
                "at": d.at,
                "compared_to": d.compared_to,
                "actor": d.actor,
            }
            for d in history[:limit]
        ],
    }


def run_promote(params: Params) -> Decision:
    """The stage: record what the candidate the last distillation registered cost to train,
    then gate it."""
    from tasks.accounting import charge_version
    from tasks.distill import CANDIDATE_FILE
    from tasks.train import TrainingRecord, load_split

    metrics_dir = params.evaluate.metrics_dir
    candidate = json.loads((metrics_dir / CANDIDATE_FILE).read_text())
    teacher = json.loads((metrics_dir / "teacher.json").read_text())
    validation = json.loads((params.validate_.report_dir / "features.json").read_text())
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
