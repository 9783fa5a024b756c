"""MLflow: where runs go, the lineage tags every run carries, and parent/child runs.

A training flow run is one parent run; teacher, baseline, student and int8 student are child
runs under it. Stages may run in separate processes (`dvc repro`), so children attach to the
parent by id rather than by an active-run stack.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tasks.core import tags as tag
from tasks.core.config import Params, TrackingConfig
from tasks.core.errors import TrackingStoreError

log = logging.getLogger(__name__)
T = TypeVar("T")
# MLflow error codes a server answers with while it is overloaded or restarting.
TRANSIENT_CODES = {"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}

# mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI; remember every URI we exported ourselves so
# a later configure() (another params file, another test) is not mistaken for a user override,
# even after something restores an older value of the variable (a test's monkeypatch does).
_exported_uris: set[str] = set()


def configure(tracking: TrackingConfig) -> str:
    """Point MLflow at the store (env MLFLOW_TRACKING_URI wins) and ensure the experiment."""
    import mlflow

    # One retry policy, ours (`retries`): MLflow's own HTTP retries would wait minutes first.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    env_uri = os.environ.get("MLFLOW_TRACKING_URI")
    uri = env_uri if env_uri and env_uri not in _exported_uris else tracking.uri
    if uri.startswith("sqlite:///"):
        # Absolute, so the store is the same file whatever the working directory later is.
        db = Path(uri.removeprefix("sqlite:///")).resolve()
        db.parent.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{db}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    _exported_uris.add(uri)
    retrying(tracking, use_experiment, tracking, tracking.experiment)
    return uri


def is_transient(exc: BaseException) -> bool:
    """A fault that may pass by itself: SQLite locked by another writer, a connection refused
    or timed out, a server saying it is busy. Anything else fails the same way again."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionError | TimeoutError):
            return True
        if isinstance(seen, sqlite3.OperationalError) and "locked" in str(seen):
            return True
        if getattr(seen, "error_code", None) in TRANSIENT_CODES:
            return True
        # `raise ... from None` ends the chain: a TrackingStoreError has had its retries.
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return False


def retrying(cfg: TrackingConfig, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`call(*args, **kwargs)` against the MLflow store, retried with exponential backoff on
    transient faults; after `cfg.retries` retries, one clear TrackingStoreError."""
    import mlflow

    name = getattr(call, "__name__", "call")
    started, delay, attempt = time.monotonic(), cfg.backoff_seconds, 0
    while True:
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            if not is_transient(exc):
                raise
            reason = _root_cause(exc)
            if attempt == cfg.retries:
                raise TrackingStoreError(
                    f"MLflow store {mlflow.get_tracking_uri()}: {name} failed {attempt + 1} "
                    f"times in {time.monotonic() - started:.1f} s ({reason}); check that the "
                    "server is up or that no other process holds the database, then rerun "
                    "(tracking.retries, tracking.backoff_seconds)"
                ) from None
            attempt += 1
            log.warning(
                "MLflow store: %s failed (%s); retry %d of %d in %.1f s",
                name,
                reason,
                attempt,
                cfg.retries,
                delay,
            )
            time.sleep(delay)
            delay *= 2


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class RetryingClient:
    """An MlflowClient whose every call is retried on transient store faults (`retrying`)."""

    def __init__(self, client: Any, cfg: TrackingConfig):
        self._client, self._cfg = client, cfg

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr
        return functools.partial(retrying, self._cfg, attr)


def client(tracking: TrackingConfig) -> RetryingClient:
    """A registry client on the configured store, retrying transient faults."""
    import mlflow

    configure(tracking)
    return RetryingClient(mlflow.MlflowClient(), tracking)


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
        tag.GIT_COMMIT: git_commit(),
        tag.PARAMS_HASH: params_hash(params),
        tag.DATA_FINGERPRINT: data_fingerprint,
        tag.DATASET: params.dataset.name,
    }
    lock = file_hash(Path("dvc.lock"))
    if lock and os.environ.get("DVC_STAGE"):
        tags[tag.DVC_LOCK_HASH] = lock
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
