"""Deployments for `loopline serve`: nightly scoring on a cron, and retraining on the event the
inference flow emits (plus a weekly fallback cron)."""

from __future__ import annotations

from typing import Any

from tasks.core.config import Params

# What the automation behind the retrain trigger does, as Prefect's Automations page shows it.
RETRAIN_AUTOMATION = (
    "When the nightly inference flow decides to retrain (feature drift, score drift or a live "
    "AUC drop, not blocked by the cooldown or too few new labels), it emits "
    "`loopline.retrain.requested` with the last day to train on; this runs the training "
    "deployment on the window ending that day. Its gate decides whether the new model serves."
)


def build_deployments(params: Params, params_path: str) -> list[Any]:
    from prefect.events import DeploymentEventTrigger

    from flows.inference import RETRAIN_EVENT, inference_flow
    from flows.training import training_flow

    nightly = inference_flow.to_deployment(
        name="nightly",
        cron=params.schedule.inference_cron,
        parameters={"params_path": params_path},  # no date: the flow scores yesterday
        description="Score yesterday's batch, check drift, decide on retraining.",
        tags=["loopline", params.registry.model_name, "mode:nightly"],
    )
    retrain = training_flow.to_deployment(
        name="retrain",
        cron=params.schedule.training_cron,
        triggers=[
            DeploymentEventTrigger(
                name="retrain requested",
                description=RETRAIN_AUTOMATION,
                expect={RETRAIN_EVENT},
                parameters={"params_path": params_path, "until": "{{ event.payload.until }}"},
            )
        ],
        parameters={"params_path": params_path},
        description="Train, distil and gate a candidate; on demand and weekly.",
        tags=["loopline", params.registry.model_name, "mode:retrain"],
    )
    return [nightly, retrain]
