"""The Prefect flow `training`: validate → train teacher → evaluate → distill (+ evaluate student)
→ promote. Each task wraps the very stage function `dvc repro` runs.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE as NO_CACHE
from prefect.states import Completed

from flows.common import IO_RETRIES, label_run, named_failure, run_logs, trigger
from tasks import stages
from tasks.core import tags as tag
from tasks.core.config import Params, load_params, override
from tasks.core.layout import CANDIDATE, metrics_file, training_places
from tasks.data.split import training_window
from tasks.registry import tracking
from tasks.registry.ledger import training_cost
from tasks.registry.links import ui_links
from tasks.training.evaluate import HEADLINE_METRICS


@task(name="ingest", cache_policy=NO_CACHE, **IO_RETRIES)
def ingest_task(params: Params) -> dict:
    return stages.ingest(params)


@task(name="validate", cache_policy=NO_CACHE, **IO_RETRIES)
def validate_task(params: Params) -> dict:
    return stages.validate(params)


@task(name="train-teacher", cache_policy=NO_CACHE)
def train_task(params: Params, until: dt.date | None, parent_run_id: str) -> dict:
    return stages.train(params, until=until, parent_run_id=parent_run_id)


@task(name="evaluate-teacher", cache_policy=NO_CACHE)
def evaluate_task(params: Params) -> dict:
    return stages.evaluate(params)


@task(name="distill-student", cache_policy=NO_CACHE)
def distill_task(params: Params) -> dict:
    return stages.distill(params)


@task(name="promote", cache_policy=NO_CACHE)
def promote_task(params: Params) -> dict:
    decision = stages.promote(params)
    rows = [
        {
            "check": c["name"],
            "passed": str(c["passed"]),
            "value": _fmt(c["value"]),
            "threshold": _fmt(c["threshold"]),
            "detail": c["detail"],
        }
        for c in decision.checks
    ]
    verdict = "promoted to champion" if decision.promoted else "not promoted (challenger)"
    create_table_artifact(
        key="promotion-decision",
        table=rows,
        description=f"{decision.model_name} v{decision.version}: {verdict}",
    )
    return decision.as_dict()


def training_run_name() -> str:
    """`train-until-2013-06-08`: the flow run named by the last day of its window (the
    configured window's when no `until` is given)."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    until = parameters.get("until")
    if until is None:
        try:
            until = load_params(parameters.get("params_path", "params.yaml")).train.window.end
        except Exception:  # a broken params file fails in the flow, with its own message
            return "train"
    return tracking.parent_run_name(until)


@flow(name="training", flow_run_name=training_run_name, log_prints=False)
@named_failure
def training_flow(
    params_path: str = "params.yaml", until: dt.date | None = None, nproc: int | None = None
) -> dict:
    """Train, evaluate, distil and gate a candidate on the window ending at `until` (default:
    params' window), the teacher on `nproc` processes (default: train.nproc). A gate that says
    no ends Completed with result "not promoted", its state message saying why."""
    with run_logs():
        return _train(params_path, until, nproc)


def _train(params_path: str, until: dt.date | None, nproc: int | None) -> Any:
    from prefect.runtime import flow_run

    logger = get_run_logger()
    params = load_params(params_path)
    if until is not None:  # a loop's retrain: its own places, the pipeline's stay DVC's
        params = training_places(params, until)
    if nproc is not None:
        params = override(params, "--nproc", "train", nproc=nproc)
    if not Path(params.ingest.features_dir).exists():
        ingest_task(params)
    params = stages.sized(params)  # the auto sizes, from the volume ingest measured
    validation = validate_task(params)
    window = training_window(params.train, until)
    label_run(params.registry.model_name, f"until:{window.end}", f"trigger:{trigger()}")
    run_tags = {tag.PREFECT_FLOW_RUN_ID: str(flow_run.id), tag.TRIGGER: "prefect"}
    parent_run_id = tracking.start_parent(params, tracking.parent_run_name(window.end), run_tags)

    with tracking.failing_parent(params.tracking, parent_run_id):
        training = train_task(params, until, parent_run_id)
        evaluation = evaluate_task(params)
        students = distill_task(params)
        decision = promote_task(params)  # ends the parent run
    cost = training_cost(params, decision["version"])  # as the promote stage charged it

    results = {**evaluation, **students}
    registered = json.loads(metrics_file(params.evaluate.metrics_dir, CANDIDATE).read_text())
    candidate = registered["variant"]  # as promote.select chose it
    _publish(params, results, parent_run_id, validation, cost, registered["selection"], decision)
    logger.info(
        "training: candidate %s AUC %.4f (teacher %.4f, baseline %.4f) on %s; cost %.4g %s",
        candidate,
        results[candidate]["roc_auc"],
        results["teacher"]["roc_auc"],
        results["baseline"]["roc_auc"],
        training["windows"]["test"],
        cost["total"],
        cost["currency"],
    )
    result = {
        "result": "promoted" if decision["decision"] == "promoted" else "not promoted",
        "decision": decision,
        "parent_run_id": parent_run_id,
        "flow_run_id": str(flow_run.id),
        "window": training["window"],
        "metrics": results,
        "candidate": candidate,
        "cost": cost,
    }
    return Completed(message=verdict_message(decision), data=result)


def verdict_message(decision: dict) -> str:
    """The flow run's state message: what the gate did with the candidate, and why not."""
    version = f"{decision['model_name']} v{decision['version']}"
    if decision["decision"] == "promoted":
        return f"{version} promoted to champion"
    return f"{version} not promoted (challenger): " + "; ".join(decision["reasons"])


def _publish(
    params: Params,
    results: dict[str, dict],
    parent_run_id: str,
    validation: dict,
    cost: dict,
    selection: str,
    decision: dict,
) -> None:
    """The metrics table, the MLflow link and the training cost as Prefect artifacts (shown in
    the flow run)."""
    stages = ", ".join(f"{name} {s['cpu_s']:.1f}" for name, s in cost["stages"].items())
    table = [
        {"model": name, **{k: _fmt(m.get(k)) for k in HEADLINE_METRICS}}
        for name, m in results.items()
    ]
    create_table_artifact(
        key="training-metrics", table=table, description="Test-window metrics of every model"
    )
    create_markdown_artifact(
        key="training-lineage",
        markdown=(
            f"{_mlflow_links(params, parent_run_id, decision)}\n\n"
            f"Validation: {validation['clean_rows']:,} clean rows, "
            f"{validation['quarantined_rows']:,} quarantined.\n\n"
            f"Registered in `{params.registry.model_name}`: {selection}."
            f"\n\nTraining cost: **{cost['total']:.4g} {cost['currency']}** for "
            f"{cost['cpu_s']:.1f} CPU-s ({stages}) over {cost['wall_s']:.1f} s wall, "
            f"{cost['gpu_s']:.1f} GPU-s, on {cost['machine'].get('cpus_usable')} CPUs "
            f"(`{cost['machine'].get('platform')}`)."
        ),
    )


def _mlflow_links(params: Params, parent_run_id: str, decision: dict) -> str:
    """The parent run and the registered version, as links when the tracking server's address
    is known (an http(s) tracking URI), else as ids and where to find them."""
    name, version = decision["model_name"], decision["version"]
    links = ui_links(params.tracking, parent_run_id, name, version)
    if links:
        return (
            f"**MLflow**: [training run `{parent_run_id}`]({links['run']}) · "
            f"[{name} v{version}]({links['version']})"
        )
    return (
        f"**MLflow parent run** `{parent_run_id}`, **version** {name} v{version} "
        f"(open with `make ui`, then http://127.0.0.1:5000/#/experiments → "
        f"`{params.tracking.experiment}`)"
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)
