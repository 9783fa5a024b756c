"""The Prefect flow `inference`: one nightly batch → validated → scored by the champion →
drift checked → retrain decided (inline: the training flow runs as a subflow; event: the event
`loopline.retrain.requested` is emitted for the training deployment's trigger)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE as NO_CACHE
from prefect.futures import wait
from prefect.states import Completed

from flows.common import IO_RETRIES, label_run, named_failure, run_logs, trigger
from flows.dask_runner import cluster_cpu_seconds, describe, run_client, task_runner
from flows.training import training_flow
from tasks.core.config import Params, load_params, override, require_volume
from tasks.core.cost import Usage, measure
from tasks.core.dates import days_between, parse_date
from tasks.core.layout import day_paths
from tasks.core.tags import CHALLENGER, CHAMPION
from tasks.data.nightly_validation import validate_batches
from tasks.monitoring.drift import run_drift
from tasks.monitoring.drift_report import add_decision
from tasks.monitoring.retrain import (
    RetrainDecision,
    blockers,
    champion_window_end,
    decide,
    last_retrain,
    new_labelled_rows,
    remember_retrain,
)
from tasks.monitoring.runs import log_decision, log_scoring_cost
from tasks.monitoring.value import retrain_value, training_cost
from tasks.registry.ledger import scoring_cost
from tasks.serving.champion import resolve_alias, resolve_champion
from tasks.serving.nightly import (
    combine_days,
    combine_shadows,
    days_locked,
    score_day,
    shadow_score,
)

RETRAIN_EVENT = "loopline.retrain.requested"


@task(name="resolve-model", cache_policy=NO_CACHE, **IO_RETRIES)
def resolve_task(params: Params, alias: str = CHAMPION) -> Any:
    """The version behind `alias`, loaded once for the run (the champion must exist)."""

    return resolve_champion(params) if alias == CHAMPION else resolve_alias(params, alias)


@task(name="validate-batches", cache_policy=NO_CACHE, **IO_RETRIES)
def validate_task(params: Params, days: list[dt.date]) -> dict[dt.date, Any]:
    """Every day's batch against the nightly contract, in as few GX passes as the files allow."""

    return validate_batches(params, {d: day_paths(params, d)["incoming"] for d in days})


@task(name="score-batch", cache_policy=NO_CACHE, **IO_RETRIES)
def score_task(params: Params, day: dt.date, champion: Any, outcome: Any) -> dict:
    return score_day(params, day, champion, outcome)


@task(name="shadow-score", cache_policy=NO_CACHE, **IO_RETRIES)
def shadow_task(params: Params, day: dt.date, champion: Any, challenger: Any) -> dict | None:
    return shadow_score(params, day, champion, challenger)


@task(name="check-drift", cache_policy=NO_CACHE, **IO_RETRIES)
def drift_task(params: Params, day: dt.date, champion: Any) -> dict:
    return run_drift(params, day, champion)


@task(name="decide-retrain", cache_policy=NO_CACHE)
def decide_task(params: Params, day: dt.date, drift: dict, champion: Any) -> dict:
    window_end = champion_window_end(champion.window, fallback=day)
    rows = new_labelled_rows(params, window_end, day)
    last = last_retrain(params)
    value = None
    if params.retrain.policy == "cost_aware" and not blockers(params.retrain, day, rows, last):
        with measure() as probe:
            value = retrain_value(params, day, window_end, training_cost(params, champion.version))
        value = dataclasses.replace(value, cpu_s=probe.usage.cpu_s)
    decision = decide(params.retrain, day, drift, rows, last, last or window_end, value).as_dict()
    add_decision(Path(drift["report"]), decision)
    log_decision(params, decision, champion.version, Path(drift["report"]))
    return decision


def request_retrain(params: Params, params_path: str, decision: dict) -> dict:
    """Inline: train on the window ending the day before; event: ask the deployment to."""
    from prefect.events import emit_event

    remember_retrain(
        params, RetrainDecision(**{k: v for k, v in decision.items() if k != "reasons"})
    )
    if params.retrain.mode == "event":
        emit_event(
            event=RETRAIN_EVENT,
            resource={"prefect.resource.id": f"loopline.model.{params.registry.model_name}"},
            payload={
                "until": decision["until"],
                "reasons": decision["reasons"],
                "date": decision["date"],
            },
        )
        return {"mode": "event", "emitted": RETRAIN_EVENT}
    result = training_flow(params_path=params_path, until=dt.date.fromisoformat(decision["until"]))
    return {
        "mode": "inline",
        "result": result["result"],
        "decision": result["decision"],
        "cost": result["cost"],
        "parent_run_id": result["parent_run_id"],
        "flow_run_id": result["flow_run_id"],
    }


def scoring_run_name() -> str:
    """`score-2013-05-16`, or `score-2013-05-01..2013-05-14` for a range: the flow run named
    by the days it scores."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    date = parameters.get("date") or str(dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
    start = parameters.get("start")
    return f"score-{start}..{date}" if start else f"score-{date}"


@flow(name="inference", flow_run_name=scoring_run_name, log_prints=False)
@named_failure
def inference_flow(
    date: str | None = None,
    params_path: str = "params.yaml",
    start: str | None = None,
    retrain_policy: str | None = None,
) -> Any:
    """Score the batch of `date` (YYYY-MM-DD; default yesterday, UTC) with the champion,
    resolved once for the run, then check drift and decide whether to retrain. With `start`,
    every day's batch from `start` to `date` is scored first (one tick of a slower cadence, or
    a backfill) and drift and the decision run once, on the window ending `date`.
    `retrain_policy` overrides `retrain.policy` (a replay comparing policies). Returns the
    summary dict; the run's state message says what was decided about retraining."""
    with run_logs():
        summary = _inference(date, params_path, start, retrain_policy)
    return Completed(message=retrain_message(summary), data=summary)


def retrain_message(summary: dict) -> str:
    """What the run decided about retraining, in one line."""
    decision, retrain = summary["retrain_decision"], summary["retrain"]
    if decision is None:
        return f"{summary['scored']:,} rows scored; no drift check (no scored rows to compare)"
    reasons = "; ".join(decision["reasons"]) or "no trigger"
    if not decision["retrain"]:
        return f"{summary['scored']:,} rows scored; no retrain: {reasons}"
    if retrain and retrain["mode"] == "inline":
        return f"retrained on the window to {decision['until']} ({retrain['result']}): {reasons}"
    return f"retrain requested ({RETRAIN_EVENT}) until {decision['until']}: {reasons}"


def _inference(
    date: str | None, params_path: str, start: str | None, retrain_policy: str | None
) -> dict:
    logger = get_run_logger()
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    day = parse_date(date) if date else yesterday
    days = days_between(parse_date(start), day) if start else [day]
    params = require_volume(load_params(params_path))
    if retrain_policy is not None:
        params = override(params, "--policy", "retrain", policy=retrain_policy)
    label_run(
        params.registry.model_name,
        f"date:{day}",
        f"retrain:{params.retrain.mode}",
        f"policy:{params.retrain.policy}",
        f"trigger:{trigger()}",
    )
    with days_locked(params, days):  # a second run of the same day waits, then replaces
        champion = resolve_task(params)
        client = run_client()
        if client is not None:
            logger.info("scoring %d day(s) on %s", len(days), describe(client))
        with measure() as meter:  # the nightly work proper: validating and scoring every day
            outcomes = validate_task(params, days)
            summaries, workers = _each_day(
                client, score_task, [(params, d, champion, outcomes[d]) for d in days]
            )
        summary = combine_days(summaries)
        cost = scoring_cost(meter.usage + workers, summary["scored"], params.cost)
        shadow = None
        if params.score.shadow:
            challenger = resolve_task(params, CHALLENGER)  # once per run, like the champion
            shadows, _ = _each_day(
                client, shadow_task, [(params, d, champion, challenger) for d in days]
            )
            shadow = combine_shadows(shadows)
        drift = drift_task(params, day, champion)
        log_scoring_cost(params, day.isoformat(), cost)
        decision = decide_task(params, day, drift, champion) if "skipped" not in drift else None
        retrain = (
            request_retrain(params, params_path, decision)
            if decision and decision["retrain"]
            else None
        )
        _publish(summary, cost, drift, decision, retrain, shadow)
    logger.info(
        "inference %s: %d scored (%.4g %s per 1M), drift share %.2f, retrain: %s",
        f"{days[0]}..{day}" if start else day,
        summary["scored"],
        cost["cost_per_million"],
        cost["currency"],
        drift.get("drift_share", 0.0),
        (decision or {}).get("reasons") or "no",
    )
    from prefect.runtime import flow_run

    return {
        **summary,
        "flow_run_id": str(flow_run.id),
        "runner": describe(client) if client is not None else "local",
        "cost": cost,
        "shadow": shadow,
        "drift": drift,
        "retrain_decision": decision,
        "retrain": retrain,
    }


def inference_for(params: Params) -> Any:
    """The flow with the task runner `score.runner` names, built now: Prefect fixes a flow's
    runner when it is decorated, and the cluster's size and address live in params."""
    if params.score.runner == "local":
        return inference_flow
    return inference_flow.with_options(task_runner=task_runner(params))


def _each_day(client: Any, work: Any, calls: list[tuple]) -> tuple[list[Any], Usage]:
    """`work` run for every call, results in call order, and the CPU seconds the cluster's
    workers spent on them. Without a cluster one after another in this process, as always;
    on Dask one task run per call, all submitted at once, all finished before any result is
    read, so no day is still writing once the caller releases the days' locks."""
    if client is None:
        return [work(*args) for args in calls], Usage()
    before = cluster_cpu_seconds(client)
    futures = [work.submit(*args) for args in calls]
    wait(futures)
    results = [future.result() for future in futures]
    return results, Usage(cpu_s=cluster_cpu_seconds(client) - before)


def _publish(
    summary: dict,
    cost: dict,
    drift: dict,
    decision: dict | None,
    retrain: dict | None,
    shadow: dict | None,
) -> None:
    """The run's `nightly-scoring` artifact: one markdown table, a row per fact."""
    days = f"{summary['start']}..{summary['date']}" if "start" in summary else summary["date"]
    score_drift = (drift.get("prediction_drift") or {}).get("score")
    rows = [
        ("model", f"`{summary['model_name']}` v{summary['model_version']}"),
        ("rows scored", f"{summary['scored']:,}"),
        ("rows quarantined", f"{summary['quarantined']:,}"),
        ("predicted positive rate", f"{summary['positive_rate_predicted']:.3f}"),
        (
            "cost of validating and scoring",
            f"{cost['cost']:.4g} {cost['currency']} ({cost['cpu_s']:.1f} CPU-s over "
            f"{cost['wall_s']:.1f} s wall)",
        ),
        ("cost per 1M predictions", f"{cost['cost_per_million']:.4g} {cost['currency']}"),
        ("features drifted", f"{drift.get('drift_share', 0):.0%}"),
        ("score drift", "n/a" if score_drift is None else f"{score_drift:.3f}"),
        ("live AUC", "n/a" if drift.get("live_auc") is None else f"{drift['live_auc']:.4f}"),
        ("drift report", f"`{drift.get('report') or drift.get('skipped', 'n/a')}`"),
    ]
    if shadow:
        rows.append(
            (
                "shadow (challenger)",
                f"v{shadow['challenger_version']} agrees on {shadow['agreement']:.1%} of rows, "
                f"score correlation {shadow['score_correlation']:.3f}",
            )
        )
    if decision:
        verdict = "**retrain**" if decision["retrain"] else "no retrain"
        rows.append(("decision", verdict))
        rows.append(("reasons", "; ".join(decision["reasons"]) or "no trigger"))
    if retrain:
        done = (
            f"inline: the training flow's candidate was {retrain['result']}"
            if retrain["mode"] == "inline"
            else f"event `{retrain['emitted']}` emitted for the training deployment"
        )
        rows.append(("retrain", done))
    create_markdown_artifact(key="nightly-scoring", markdown=markdown_table(("batch", days), rows))


def markdown_table(header: tuple[str, str], rows: list[tuple[str, str]]) -> str:
    """Two columns of markdown table (a `|` inside a cell is escaped)."""

    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = [f"| {cell(header[0])} | {cell(header[1])} |", "| --- | --- |"]
    lines += [f"| {cell(key)} | {cell(value)} |" for key, value in rows]
    return "\n".join(lines)
