"""The simulation clock: replay days of the real data as nightly batches through the loop.

Every `replay.cadence_days` it writes each day's incoming batch and the labels that have arrived,
runs the inference flow over those days (which may retrain), and scores the same rows with the
model the loop started from (static) and with an oracle retrained monthly on every label, so the
loop's value can be read per month: loop vs static vs oracle AUC on the same labelled rows.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import pandas as pd

from tasks.core import tags as tag
from tasks.core.columns import MODEL_VERSION, SCORE
from tasks.core.config import Params
from tasks.core.dates import days_between
from tasks.core.errors import LooplineError
from tasks.core.io import write_json
from tasks.core.layout import day_paths, replay_summary_path
from tasks.core.metrics import classification_metrics
from tasks.core.tags import CHAMPION
from tasks.registry import ledger
from tasks.registry.aliases import alias_version, registry_client, rollback
from tasks.registry.audit import audit_decisions
from tasks.serving.champion import Champion, resolve_champion, score_frame
from tasks.simulation.upstream import write_day_batch, write_last_labels

if TYPE_CHECKING:  # torch and the training code load only when a replay runs
    from tasks.simulation.oracle import BackgroundOracles

log = logging.getLogger(__name__)


def ticks(start: dt.date, end: dt.date, cadence_days: int) -> list[tuple[dt.date, dt.date]]:
    """[start, end] cut into runs of `cadence_days` days (the last one may be shorter)."""
    days = days_between(start, end)
    return [
        (days[i], days[min(i + cadence_days, len(days)) - 1])
        for i in range(0, len(days), cadence_days)
    ]


def replay(
    params: Params,
    start: dt.date,
    end: dt.date,
    run_tick: Callable[[dt.date, dt.date], dict],
    progress: Callable[[dt.date, dt.date, dict], None] | None = None,
) -> dict[str, Any]:
    """Drive `run_tick(first, last)` (the inference flow over those days) across [start, end]
    every `replay.cadence_days`; score the same rows with the static model and the oracle, and
    write the per-month table and every tick to `<drift.report_dir>/../replay/summary.json`."""
    started = time.perf_counter()
    from tasks.simulation.oracle import BackgroundOracles  # torch: only when a replay runs

    static = resolve_champion(params)  # the model the loop started with, never replaced here
    schedule = ticks(start, end, params.replay.cadence_days)
    months = sorted({day.replace(day=1) for day in days_between(start, end)})
    head = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "cadence_days": params.replay.cadence_days,
        "static_version": static.version,
        "static_window": static.window,
        "oracle_net": params.replay.oracle_net if params.replay.oracle else None,
    }
    records: list[dict[str, Any]] = []
    with BackgroundOracles(params, months) if params.replay.oracle else nullcontext() as oracles:
        comparison = _Comparison(params, static, oracles)
        scored = []
        for first, last in schedule:
            tick_days = days_between(first, last)
            for day in tick_days:
                write_day_batch(params, day)
            result = run_tick(first, last)
            scored.extend(comparison.score(day) for day in tick_days)
            records.append(tick_record(first, last, result))
            # A replay that fails later keeps what its finished ticks did.
            write_json(replay_summary_path(params), {**head, "complete": False, "ticks": records})
            if progress is not None:
                progress(first, last, result)
        oracle_wait = oracles.waited_s if oracles else 0.0
    write_last_labels(params, end)
    served = [frame for frame in scored if len(frame)] or scored  # days without data add none
    table = monthly_table(params, pd.concat(served, ignore_index=True), pd.DataFrame(records))
    final = resolve_champion(params)
    costs = functools.partial(ledger.registered_version_costs, params)
    summary = {
        **head,
        "complete": True,
        "static_training_cost": costs(static.version)["training_cost"],
        "final_champion": {"version": final.version, **costs(final.version)},
        "months": table,
        "gate_record": audit_decisions(params),
        "ticks": records,
        "seconds": {
            "total": time.perf_counter() - started,
            "oracle_training": comparison.oracle_seconds,
            "oracle_wait": oracle_wait,
        },
        "training_cpu_s": {
            "loop": sum(r["training_cpu_s"] or 0.0 for r in records),
            "loop_probes": sum(r["probe_cpu_s"] or 0.0 for r in records),
            "oracle": comparison.oracle_cpu_s if params.replay.oracle else None,
        },
    }
    write_json(replay_summary_path(params), summary)
    return summary


class _Comparison:
    """Scores each replayed day's served rows with the static model and the monthly oracle."""

    def __init__(self, params: Params, static: Champion, oracles: BackgroundOracles | None) -> None:
        self.params, self.static, self.oracles = params, static, oracles
        self.oracle: Champion | None = None
        self.oracle_seconds = 0.0
        self.oracle_cpu_s = 0.0

    def _oracle_for(self, day: dt.date) -> Champion | None:
        if self.oracles is None:
            return None
        month = day.replace(day=1)
        if self.oracle is None or self.oracle.version != f"{month:%Y-%m}":
            result = self.oracles.get(month)
            self.oracle = result.champion
            self.oracle_seconds += result.seconds
            self.oracle_cpu_s += result.cpu_s
            log.info("oracle %s: trained beside the loop in %.1f s", month, result.seconds)
        return self.oracle

    def score(self, day: dt.date) -> pd.DataFrame:
        ids, chunk = self.params.dataset.id_columns, self.params.score.chunk_rows
        paths = day_paths(self.params, day)
        served = pd.read_parquet(paths["predictions"], columns=[*ids, SCORE, MODEL_VERSION])
        if served.empty:  # a day without data: nothing served, nothing to compare
            return served.assign(static_score=[], date=[])
        rows = pd.read_parquet(paths["incoming"]).merge(served[ids], on=ids)
        where = str(paths["incoming"])
        static = score_frame(self.static, rows, chunk, where=where)[0]
        compared = rows[ids].assign(static_score=static)
        oracle = self._oracle_for(day)
        if oracle is not None:
            compared["oracle_score"] = score_frame(oracle, rows, chunk, where=where)[0]
        return served.merge(compared, on=ids).assign(date=day.isoformat())


def tick_record(first: dt.date, last: dt.date, result: dict) -> dict[str, Any]:
    """What the summary needs of one tick: drift, the decision and what the retrain did."""
    decision = result.get("retrain_decision") or {}
    retrain = result.get("retrain") or {}
    promotion = retrain.get("decision") or {}
    drift = result["drift"]
    return {
        "start": first.isoformat(),
        "date": last.isoformat(),
        "rows": result["rows"],
        "scored": result["scored"],
        "quarantined": result["quarantined"],
        "drift_share": drift.get("drift_share"),
        "prediction_drift": (drift.get("prediction_drift") or {}).get("score"),
        "live_auc": drift.get("live_auc"),
        "scoring_cost": result.get("cost"),
        "training_cost": (retrain.get("cost") or {}).get("total"),
        "training_cpu_s": (retrain.get("cost") or {}).get("cpu_s"),
        "probe_cpu_s": (decision.get("value") or {}).get("cpu_s"),
        "retrain": bool(decision.get("retrain")),
        "reasons": decision.get("reasons", []),
        "model_version": result["model_version"],
        # Where each tick can be opened: its drift report, its Prefect flow run, and the
        # retrain's training flow run and MLflow parent run.
        "report": drift.get("report"),
        "flow_run_id": result.get("flow_run_id"),
        "retrain_flow_run_id": retrain.get("flow_run_id"),
        "retrain_run_id": retrain.get("parent_run_id"),
        "promotion": {
            "version": promotion.get("version"),
            "decision": promotion.get("decision"),
            "reasons": promotion.get("reasons", []),
        }
        if promotion
        else None,
    }


def monthly_table(params: Params, scored: pd.DataFrame, ticks: pd.DataFrame) -> list[dict]:
    """Per month: AUC of the loop, the static model and the oracle on the same labelled rows,
    with the month's mean drift share and retrains (ticks count in the month they end)."""
    ids, target = params.dataset.id_columns, params.dataset.target.name
    delivered = [
        pd.read_parquet(path)
        for d in sorted(scored["date"].unique())
        if (path := day_paths(params, dt.date.fromisoformat(d))["labels"]).exists()
    ]
    if not delivered:  # every replayed day without data: no month to compare
        return []
    labels = pd.concat(delivered, ignore_index=True)
    joined = scored.merge(labels, on=ids, how="inner")
    joined["month"] = joined["date"].str[:7]
    ticks["month"] = ticks["date"].str[:7]
    series = {"loop_auc": SCORE, "static_auc": "static_score", "oracle_auc": "oracle_score"}
    table = []
    for month, part in joined.groupby("month"):
        month_ticks = ticks[ticks["month"] == month]
        y = part[target].to_numpy()
        row: dict[str, Any] = {"month": month, "rows": len(part)}
        for name, column in series.items():
            row[name] = _auc(y, part[column].to_numpy()) if column in part else None
        row.update(
            mean_drift_share=float(month_ticks["drift_share"].mean()) if len(month_ticks) else None,
            retrains=int(month_ticks["retrain"].sum()),
            versions=sorted(set(part[MODEL_VERSION])),
        )
        table.append(row)
    return table


def _auc(y: Any, scores: Any) -> float | None:
    """ROC AUC, or None where a month holds a single class (undefined)."""
    if y.min() == y.max():
        return None
    return classification_metrics(y, scores, 0.5, 10)["roc_auc"]


def start_from_pipeline_model(params: Params) -> str:
    """Put the loop back where `dvc repro` left it, so a replay (the demo) can run again: the
    newest version trained on the configured `train.window` (what the pipeline trains; the
    loop's retrains carry later windows) serves again, by a recorded rollback when another
    version serves, and the retrain cooldown is cleared."""

    name, client = params.registry.model_name, registry_client(params)
    window = params.train.window.tag
    versions = client.search_model_versions(f"name = '{name}' and tags.`{tag.WINDOW}` = '{window}'")
    if not versions:
        raise LooplineError(
            f"{name}: no version trained on train.window {window}; run `dvc repro` first"
        )
    version = str(max(int(v.version) for v in versions))
    if alias_version(client, name, CHAMPION) != version:
        rollback(params, "replay restarts from the pipeline's model", to_version=version)
    params.retrain.state_path.unlink(missing_ok=True)
    return version
