"""What `loopline status` shows: the three aliases with their gate metrics and costs, and the
last decisions."""

from __future__ import annotations

from typing import Any

from tasks.core import tags as tag
from tasks.core.config import Params
from tasks.registry.aliases import alias_version, registry_client
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
    return {
        "model_name": name,
        "cost": {
            "currency": cfg.currency,
            "params_file": str(params.file),
            "cpu_hour": cfg.cpu_hour,
            "gpu_hour": cfg.gpu_hour,
            "production": cfg.production.model_dump(),
        },
        tag.CHAMPION: describe(tag.CHAMPION),
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
