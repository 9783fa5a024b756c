"""MLflow: where runs go, the lineage tags every run carries, and parent/child runs.

A training flow run is one parent run; teacher, baseline, student and int8 student are child
runs under it. Stages may run in separate processes (`dvc repro`), so children attach to the
parent by id rather than by an active-run stack.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tasks.config import Params, TrackingConfig

log = logging.getLogger(__name__)

# mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI; remember what we exported ourselves so a
# later configure() (another params file, another test) is not mistaken for a user override.
_exported_uri: str | None = None


def configure(tracking: TrackingConfig) -> str:
    """Point MLflow at the store (env MLFLOW_TRACKING_URI wins) and ensure the experiment."""
    import mlflow

    global _exported_uri
    env_uri = os.environ.get("MLFLOW_TRACKING_URI")
    uri = env_uri if env_uri and env_uri != _exported_uri else tracking.uri
    if uri.startswith("sqlite:///"):
        # Absolute, so the store is the same file whatever the working directory later is.
        db = Path(uri.removeprefix("sqlite:///")).resolve()
        db.parent.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{db}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    _exported_uri = uri
    use_experiment(tracking, tracking.experiment)
    return uri


def use_experiment(tracking: TrackingConfig, name: str) -> Any:
    """Make `name` the active experiment, created with its artifacts under the artifact root."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if mlflow.get_experiment_by_name(name) is None:
        location = None
        if not mlflow.get_tracking_uri().startswith(("http://", "https://", "databricks")):
            tracking.artifact_root.mkdir(parents=True, exist_ok=True)
            location = tracking.artifact_root.resolve().as_uri()
        with contextlib.suppress(MlflowException):  # another process created it first
            mlflow.create_experiment(name, artifact_location=location)
    return mlflow.set_experiment(name)


def params_hash(params: Params) -> str:
    return hashlib.sha256(params.model_dump_json(by_alias=True).encode()).hexdigest()[:16]


def file_hash(path: Path) -> str | None:
    path = Path(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else None


def git_commit() -> str:
    """The commit the code came from, with '-dirty' when the work tree has changes."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def lineage_tags(params: Params, data_fingerprint: str) -> dict[str, str]:
    tags = {
        "loopline.git_commit": git_commit(),
        "loopline.params_hash": params_hash(params),
        "loopline.data_fingerprint": data_fingerprint,
        "loopline.dataset": params.dataset.name,
    }
    lock = file_hash(Path("dvc.lock"))
    if lock and os.environ.get("DVC_STAGE"):
        tags["loopline.dvc_lock_hash"] = lock
    return tags


def start_parent(params: Params, name: str, tags: dict[str, str]) -> str:
    """Create the flow's parent run and return its id (closed again at once: children attach)."""
    import mlflow

    configure(params.tracking)
    with mlflow.start_run(run_name=name, tags=tags) as run:
        mlflow.log_dict(params.model_dump(mode="json", by_alias=True), "params.json")
        return run.info.run_id


@contextlib.contextmanager
def child_run(parent_run_id: str, name: str, tags: dict[str, str]) -> Iterator[Any]:
    import mlflow

    with mlflow.start_run(run_name=name, parent_run_id=parent_run_id, tags=tags) as run:
        yield run


@contextlib.contextmanager
def resume_run(run_id: str) -> Iterator[Any]:
    import mlflow

    with mlflow.start_run(run_id=run_id) as run:
        yield run


def log_metrics(metrics: dict[str, float], prefix: str = "") -> None:
    """Log the finite numeric values of a metrics dict (NaN/None are skipped, not faked)."""
    import math

    import mlflow

    clean = {
        f"{prefix}{k}": float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }
    mlflow.log_metrics(clean)
