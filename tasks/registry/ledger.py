"""Cost accounting: every training stage measured into a ledger, each model version charged for
the stages it is made of, and each nightly scoring run's cost logged beside its drift check.

The ledger (`cost.ledger_path`) keeps the latest measured run of each stage, whether `dvc repro`
or the Prefect training flow ran it (both go through `tasks.stages`), with the machine it ran
on. A version is charged the latest validate, train, evaluate and distill: the stages whose
outputs it is made of. Ingest builds the feature table that later retrains read as well, so it
is charged once, to the first version gated after it ran. Promote is measured too but charged
to nobody: the gate's cost is known only after it has judged. Prices come from params when a
cost is reported; the seconds never change.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import platform
import sys
from collections.abc import Iterator
from typing import Any

from tasks.core import tags as tag
from tasks.core.config import CostConfig, Params
from tasks.core.cost import Usage, lifetime, measure, per_million
from tasks.registry import tracking

log = logging.getLogger(__name__)

CHARGED_STAGES = ("ingest", "validate", "train", "evaluate", "distill")
CHARGED_TO = "charged_to"  # the version an ingest entry has been charged to


def load_ledger(params: Params) -> dict[str, Any]:
    path = params.cost.ledger_path
    if not path.exists():
        return {"stages": {}}
    return json.loads(path.read_text(encoding="utf-8"))


def _save_ledger(params: Params, ledger: dict[str, Any]) -> None:
    from tasks.core.io import (
        write_json,  # pandas: only once a stage has run, keeping the CLI instant
    )

    write_json(params.cost.ledger_path, ledger)


def machine() -> dict[str, Any]:
    """The machine the seconds were measured on: the same work costs other seconds elsewhere."""
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(usable) if usable is not None else os.cpu_count(),
        "platform": platform.platform(),
        "arch": platform.machine(),
        "python": platform.python_version(),
    }


def _torch_threads() -> int | None:
    """Torch's intra-op threads, if the stage used torch (never imported just to ask)."""
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


@contextlib.contextmanager
def metered(params: Params, stage: str) -> Iterator[None]:
    """Measure a stage and record it in the ledger, replacing that stage's previous entry (a
    stage that fails records nothing). GPU seconds stay 0: no stage runs on CUDA today; a stage
    that does should pass `on_gpu=True` to `measure`."""
    with measure() as meter:
        yield
    ledger = load_ledger(params)
    ledger["stages"][stage] = {
        **meter.usage.as_dict(params.cost),
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "torch_threads": _torch_threads(),
    }
    ledger["machine"] = machine()
    ledger["currency"] = params.cost.currency
    _save_ledger(params, ledger)
    log.info("%s: %.1f s wall, %.1f CPU-s", stage, meter.usage.wall_s, meter.usage.cpu_s)


def _charged(name: str, entry: dict[str, Any], version: str) -> bool:
    return name != "ingest" or entry.get(CHARGED_TO) in (None, version)


def training_cost(params: Params, version: str) -> dict[str, Any]:
    """What `version` cost to train, from the ledger: total money, CPU/wall/GPU seconds and the
    stages behind them."""
    return _cost_of(load_ledger(params), version, params.cost)


def _cost_of(ledger: dict[str, Any], version: str, cfg: CostConfig) -> dict[str, Any]:
    stages = {
        name: ledger["stages"][name]
        for name in CHARGED_STAGES
        if name in ledger["stages"] and _charged(name, ledger["stages"][name], version)
    }
    missing = [n for n in CHARGED_STAGES[1:] if n not in stages]
    if missing:
        log.warning("cost: no ledger entry for %s; v%s is charged without them", missing, version)
    usage = sum(
        (Usage(e["wall_s"], e["cpu_s"], e["gpu_s"]) for e in stages.values()), start=Usage()
    )
    return {
        "total": usage.money(cfg),
        "currency": cfg.currency,
        "cpu_s": usage.cpu_s,
        "wall_s": usage.wall_s,
        "gpu_s": usage.gpu_s,
        "stages": stages,
        "machine": ledger.get("machine", {}),
    }


def charge_version(params: Params, version: str, parent_run_id: str | None) -> dict[str, Any]:
    """Record what `version` cost to train: tags on the version, metrics, machine facts and the
    ledger on the training's parent run. Ingest is marked as charged to it."""
    from mlflow.entities import Metric, RunTag

    ledger = load_ledger(params)
    cost = _cost_of(ledger, version, params.cost)
    client = tracking.client(params.tracking)
    tags = {
        tag.TRAINING_COST: str(cost["total"]),
        tag.TRAINING_CPU_S: str(cost["cpu_s"]),
        tag.TRAINING_WALL_S: str(cost["wall_s"]),
    }
    for key, value in tags.items():
        client.set_model_version_tag(params.registry.model_name, version, key, value)
    if parent_run_id:
        now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        metrics = {
            "cost_training": cost["total"],
            "cost_training_cpu_s": cost["cpu_s"],
            "cost_training_wall_s": cost["wall_s"],
            "cost_training_gpu_s": cost["gpu_s"],
            **{f"cost_{name}_cpu_s": s["cpu_s"] for name, s in cost["stages"].items()},
        }
        run_tags = {f"{tag.MACHINE_PREFIX}{k}": str(v) for k, v in cost["machine"].items()}
        client.log_batch(
            parent_run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            tags=[RunTag(k, v) for k, v in run_tags.items()],
        )
        client.log_dict(parent_run_id, ledger, "cost/ledger.json")
    if "ingest" in cost["stages"]:
        ledger["stages"]["ingest"][CHARGED_TO] = version
        _save_ledger(params, ledger)
    log.info(
        "cost: v%s trained for %.4g %s (%.0f CPU-s, %.0f s wall)",
        version,
        cost["total"],
        cost["currency"],
        cost["cpu_s"],
        cost["wall_s"],
    )
    return cost


def scoring_cost(usage: Usage, rows: int, cfg: CostConfig) -> dict[str, Any]:
    """A scoring run's measured usage, its money and its rate per 1M predictions."""
    return {
        **usage.as_dict(cfg),
        "currency": cfg.currency,
        "rows": rows,
        "cost_per_million": per_million(usage, rows, cfg),
        "cpu_s_per_million": usage.cpu_s * 1e6 / rows if rows else float("nan"),
    }


def registered_version_costs(params: Params, version: str) -> dict:
    """`version_costs` of a registered version of `registry.model_name`, from its own tags."""
    client = tracking.client(params.tracking)
    tags = client.get_model_version(params.registry.model_name, version).tags
    return version_costs(tags, None, params.cost)


def version_costs(tags: dict[str, str], gate_latency_ms: float | None, cfg: CostConfig) -> dict:
    """What `loopline status` shows of a version: its training cost, cost per 1M predictions,
    latency p95 (the version's tag, else the gate's figure) and its projected lifetime."""

    def number(key: str) -> float | None:
        return float(tags[key]) if tags.get(key) else None

    training, rate = number(tag.TRAINING_COST), number(tag.COST_PER_MILLION)
    latency = number(tag.LATENCY_MS_P95)
    return {
        "training_cost": training,
        "training_cpu_s": number(tag.TRAINING_CPU_S),
        "cost_per_million": rate,
        "latency_ms_p95": gate_latency_ms if latency is None else latency,
        "lifetime": None if training is None or rate is None else lifetime(training, rate, cfg),
    }
