"""Deployments for `loopline serve`: nightly scoring on a cron, and retraining on the event the
inference flow emits (plus a weekly fallback cron)."""

from __future__ import annotations

from typing import Any

from tasks.core.config import Params


def build_deployments(params: Params, params_path: str) -> list[Any]:
    from prefect.events import DeploymentEventTrigger

    from flows.inference import RETRAIN_EVENT, inference_flow
    from flows.training import training_flow

    nightly = inference_flow.to_deployment(
        name="nightly",
        cron=params.schedule.inference_cron,
        parameters={"params_path": params_path},  # no date: the flow scores yesterday
        description="Score yesterday's batch, check drift, decide on retraining.",
        tags=["loopline"],
    )
    retrain = training_flow.to_deployment(
        name="retrain",
        cron=params.schedule.training_cron,
        triggers=[
            DeploymentEventTrigger(
                name="retrain requested",
                expect={RETRAIN_EVENT},
                parameters={"params_path": params_path, "until": "{{ event.payload.until }}"},
            )
        ],
        parameters={"params_path": params_path},
        description="Train, distil and gate a candidate; on demand and weekly.",
        tags=["loopline"],
    )
    return [nightly, retrain]
