"""The registry's aliases: who is champion, challenger and previous, and every move of them.

Each move (a gate's verdict, a forced promotion, a rollback) happens inside the promotion
history's lock and is recorded twice: as tags on the model version and as a row in the history.
"""

from __future__ import annotations

import getpass
import json
import os
from typing import Any

from tasks.core import tags as tag
from tasks.core.config import Params
from tasks.core.errors import LooplineError
from tasks.registry import tracking
from tasks.registry.history import Decision, append, locked


class PromotionError(LooplineError):
    """A promotion command cannot be carried out (unknown version, nothing to roll back to)."""


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


def registry_client(params: Params) -> Any:
    """The registry client promotion uses: every call retried on transient store faults."""
    return tracking.client(params.tracking)


def actor() -> str:
    try:
        return os.environ.get("LOOPLINE_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def move_champion(client: Any, name: str, version: str, champion: str | None) -> None:
    if champion is not None and champion != version:
        client.set_registered_model_alias(name, tag.PREVIOUS, champion)
    client.set_registered_model_alias(name, tag.CHAMPION, version)
    if alias_version(client, name, tag.CHALLENGER) == version:
        client.delete_registered_model_alias(name, tag.CHALLENGER)


def record_decision(client: Any, conn: Any, decision: Decision) -> Decision:
    """Tags on the model version (and its run) plus a row in the history, inside the lock."""
    tags = {
        tag.DECISION: decision.decision,
        tag.DECISION_REASONS: json.dumps(decision.reasons)[:4900],
        tag.DECIDED_AT: decision.at,
        tag.DECIDED_BY: decision.actor,
        tag.COMPARED_TO: decision.compared_to or "",
    }
    for key, value in tags.items():
        client.set_model_version_tag(decision.model_name, decision.version, key, value)
    details = client.get_model_version(decision.model_name, decision.version)
    client.update_model_version(
        decision.model_name,
        decision.version,
        description=with_verdict(details.description, verdict_line(decision)),
    )
    run_id = details.run_id
    if run_id:
        client.set_tag(run_id, tag.PROMOTION, decision.decision)
    append(conn, decision)
    return decision


VERDICTS = {
    "promoted": "promoted to champion",
    "rejected": "not promoted (challenger)",
    "insufficient_evidence": "not promoted (challenger): the holdout cannot tell it apart",
    "forced": "made champion by hand",
    "rolled_back": "made champion again by a rollback",
}


def verdict_line(decision: Decision) -> str:
    """The gate's verdict as the version's description says it."""
    against = f" against v{decision.compared_to}" if decision.compared_to else ""
    return (
        f"**{VERDICTS.get(decision.decision, decision.decision)}**{against} on "
        f"{decision.at} by {decision.actor}: " + "; ".join(decision.reasons)
    )


def with_verdict(description: str | None, verdict: str) -> str:
    """`description` with its gate-verdict line replaced by `verdict` (appended if absent)."""
    kept = [
        line for line in (description or "").splitlines() if not line.startswith(tag.VERDICT_PREFIX)
    ]
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join([*kept, "", f"{tag.VERDICT_PREFIX} {verdict}"]).lstrip("\n")


def require_version(client: Any, name: str, version: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(name, version)
    except MlflowException:
        raise PromotionError(f"{name} has no version {version}; see `loopline status`") from None


def force_promote(params: Params, version: str, reason: str) -> Decision:
    """A human override: champion moves to `version` whatever the checks say, recorded as such."""
    name, client = params.registry.model_name, registry_client(params)
    require_version(client, name, version)
    with locked(params.promote.history_db) as conn:
        champion = alias_version(client, name, tag.CHAMPION)
        return _install(
            client, conn, name, version, champion, "forced", f"forced by hand: {reason}"
        )


def rollback(params: Params, reason: str, to_version: str | None = None) -> Decision:
    """Champion back to `to_version`, or to the version aliased `previous`."""
    name, client = params.registry.model_name, registry_client(params)
    with locked(params.promote.history_db) as conn:
        champion = alias_version(client, name, tag.CHAMPION)
        target = to_version or alias_version(client, name, tag.PREVIOUS)
        if target is None:
            raise PromotionError(f"{name}: no previous champion to roll back to; pass --to VERSION")
        require_version(client, name, target)
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
    move_champion(client, name, version, champion)
    decision = Decision(
        name, version, kind, [reason], compared_to=champion, champion_after=version, actor=actor()
    )
    return record_decision(client, conn, decision)
