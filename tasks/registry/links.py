"""Addresses of the UIs' own pages: MLflow's run and model version pages when the tracking
URI is a server's (http or https), Prefect's flow run pages when its server's address is known
(PREFECT_UI_URL, else PREFECT_API_URL without `/api`). A local store has no pages: None."""

from __future__ import annotations

import os

from tasks.core.config import TrackingConfig
from tasks.registry.tracking import client


def mlflow_base() -> str | None:
    """The MLflow UI's address: the tracking URI when it is a server's."""
    import mlflow

    uri = mlflow.get_tracking_uri()
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else None


def mlflow_version_url(model_name: str, model_version: str) -> str | None:
    base = mlflow_base()
    return f"{base}/#/models/{model_name}/versions/{model_version}" if base else None


def mlflow_run_url(store: TrackingConfig, run_id: str) -> str | None:
    base = mlflow_base()
    if base is None:
        return None
    experiment = client(store).get_run(run_id).info.experiment_id
    return f"{base}/#/experiments/{experiment}/runs/{run_id}"


def ui_links(
    store: TrackingConfig, run_id: str, model_name: str, model_version: str
) -> dict[str, str] | None:
    """The MLflow UI pages of a run and a model version; None for a local store."""
    run = mlflow_run_url(store, run_id)
    version = mlflow_version_url(model_name, model_version)
    return {"run": run, "version": version} if run and version else None


def prefect_base() -> str | None:
    """The Prefect UI's address, from the environment Prefect itself reads."""
    ui = os.environ.get("PREFECT_UI_URL")
    if ui:
        return ui.rstrip("/")
    api = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    return api.removesuffix("/api") if api.startswith(("http://", "https://")) else None


def prefect_run_url(flow_run_id: str | None) -> str | None:
    base = prefect_base()
    return f"{base}/runs/flow-run/{flow_run_id}" if base and flow_run_id else None
