"""What `loopline status` shows: the three aliases with their gate metrics and costs, and the
last decisions."""

from __future__ import annotations

from typing import Any

from tasks.core import tags as tag
from tasks.core.config import Params
from tasks.registry.aliases import alias_version, registry_client
from tasks.registry.audit import audit_decisions, audits
from tasks.registry.history import recent
from tasks.registry.ledger import version_costs


def status(params: Params, limit: int = 10) -> dict[str, Any]:
    """Champion, challenger and previous with their gate metrics and costs, plus the last
    decisions."""
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
            "variant": tags.get(tag.VARIANT),
            "decision": tags.get(tag.DECISION),
            "metrics": metrics,
            "cost": version_costs(tags, metrics.get("latency_p95"), params.cost),
        }

    cfg = params.cost
    champion = describe(tag.CHAMPION)
    return {
        "model_name": name,
        "no_champion": None if champion else no_champion_hint(params),
        "gate_record": {
            **audit_decisions(params),
            "latest": [a.sentence() for a in audits(params)[-5:]],
        },
        "cost": {
            "currency": cfg.currency,
            "params_file": str(params.file),
            "cpu_hour": cfg.cpu_hour,
            "gpu_hour": cfg.gpu_hour,
            "production": cfg.production.model_dump(),
        },
        tag.CHAMPION: champion,
        tag.CHALLENGER: describe(tag.CHALLENGER),
        tag.PREVIOUS: describe(tag.PREVIOUS),
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


def no_champion_hint(params: Params) -> str:
    """What to do when no version serves: the challenger, why the gate turned it down, and the
    exact commands that get a champion (promote it by hand, or train again)."""
    name, client = params.registry.model_name, registry_client(params)
    train = "run `loopline train` (or `dvc repro`) to train and gate a model"
    challenger = alias_version(client, name, tag.CHALLENGER)
    if challenger is None:
        return f"{name}: no champion yet; {train}"
    judged = next(
        (d for d in recent(params.promote.history_db, name, limit=50) if d.version == challenger),
        None,
    )
    why = f" ({'; '.join(judged.reasons)})" if judged else ""
    return (
        f"{name}: no champion yet: v{challenger}, the challenger, was turned down by the "
        f"gate{why}; promote it by hand with `loopline promote --version {challenger} --force "
        f'--reason "..."`, or {train} again'
    )
