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

# The experiment tag MLflow 3's UI reads to choose its view; without it an experiment opens in
# the GenAI view (traces, prompts). Accepted values include "genai_development" and this one.
EXPERIMENT_KIND, MODEL_DEVELOPMENT = "mlflow.experimentKind", "custom_model_development"
# The run description MLflow's UI shows and edits (markdown).
NOTE = "mlflow.note.content"
# Tracked files `dvc repro` rewrites as it runs, so a change to them alone does not make the
# code dirty: its lock, the stages' numbers-only metrics and their plots (git keeps those for
# `dvc metrics diff` / `dvc plots diff`; see .gitignore).
GENERATED_TRACKED = ("dvc.lock", "reports/**/numbers/*.json", "reports/plots/**")

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
    from_env = bool(env_uri) and env_uri not in _exported_uris
    uri = env_uri if from_env else tracking.uri
    if uri.startswith("sqlite:///"):
        # Absolute, so the store is the same file whatever the working directory later is.
        db = Path(uri.removeprefix("sqlite:///")).resolve()
        db.parent.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{db}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if not from_env:  # the user's own value stays the user's for every later call
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
    """Make `name` the active experiment, created with its artifacts under the artifact root
    and marked as model development (`EXPERIMENT_KIND`), so MLflow 3's UI opens it in the
    model-training view, not the GenAI one."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if mlflow.get_experiment_by_name(name) is None:
        location = None
        if not mlflow.get_tracking_uri().startswith(("http://", "https://", "databricks")):
            tracking.artifact_root.mkdir(parents=True, exist_ok=True)
            location = tracking.artifact_root.resolve().as_uri()
        with contextlib.suppress(MlflowException):  # another process created it first
            mlflow.create_experiment(
                name, artifact_location=location, tags={EXPERIMENT_KIND: MODEL_DEVELOPMENT}
            )
    experiment = mlflow.set_experiment(name)
    if EXPERIMENT_KIND not in experiment.tags:  # created before loopline set the kind
        mlflow.MlflowClient().set_experiment_tag(
            experiment.experiment_id, EXPERIMENT_KIND, MODEL_DEVELOPMENT
        )
    return experiment


def params_hash(params: Params) -> str:
    return hashlib.sha256(params.model_dump_json(by_alias=True).encode()).hexdigest()[:16]


def file_hash(path: Path) -> str | None:
    path = Path(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else None


def git_commit(cwd: Path | None = None) -> str:
    """The commit the code came from, with '-dirty' when a tracked file differs from it. The
    files `dvc repro` itself rewrites (`GENERATED_TRACKED`: dvc.lock) do not count, or every
    pipeline run would call its own checkout dirty."""
    excluded = [f":(top,exclude,glob){name}" for name in GENERATED_TRACKED]

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, check=True, cwd=cwd
        ).stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ":/", *excluded)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def training_tags(params: Params) -> dict[str, str]:
    """What a training knows at its start: code, config and, under DVC, the dvc.lock it started
    from. Recorded once, on the parent run; every stage of the training reuses them."""
    tags = {
        tag.GIT_COMMIT: git_commit(),
        tag.PARAMS_HASH: params_hash(params),
        tag.DATASET: params.dataset.name,
    }
    lock = file_hash(Path("dvc.lock"))
    if lock and os.environ.get("DVC_STAGE"):
        tags[tag.DVC_LOCK_HASH] = lock
    return tags


# The parent's tags a stage reuses instead of measuring again (dvc.lock changes between stages).
INHERITED_TAGS = (tag.GIT_COMMIT, tag.PARAMS_HASH, tag.DVC_LOCK_HASH)


def lineage_tags(
    params: Params, data_fingerprint: str, parent_run_id: str | None = None
) -> dict[str, str]:
    """The lineage tags of a run of the training `parent_run_id`: the parent's code, config and
    dvc.lock hash as recorded at the training's start, plus the data fingerprint."""
    tags = {**training_tags(params), tag.DATA_FINGERPRINT: data_fingerprint}
    if parent_run_id:
        parent = client(params.tracking).get_run(parent_run_id).data.tags
        tags.pop(tag.DVC_LOCK_HASH, None)
        tags |= {key: parent[key] for key in INHERITED_TAGS if key in parent}
    return tags


def parent_run_name(until: object) -> str:
    """The parent run of the training on the window ending `until`: `train-until-2013-03-31`,
    as the Prefect flow run of that training is named."""
    return f"train-until-{until}"


def start_parent(params: Params, name: str, tags: dict[str, str]) -> str:
    """Create the training's parent run (with `training_tags`, the config as params.json and
    the flattened sections the training uses as params) and return its id. It stays open while
    the stages attach their child runs, whatever process they run in; `end_run` closes it."""
    import mlflow
    from mlflow.tracking.context.registry import resolve_tags

    mlflow_client = client(params.tracking)  # configured: the training experiment is active
    experiment = mlflow.get_experiment_by_name(params.tracking.experiment)
    run = mlflow_client.create_run(
        experiment.experiment_id,
        tags=resolve_tags({**training_tags(params), **tags}),  # + user and source, as start_run
        run_name=name,
    )
    run_id = run.info.run_id
    mlflow_client.log_dict(run_id, params.model_dump(mode="json", by_alias=True), "params.json")
    log_params(mlflow_client, run_id, training_params(params))
    return run_id


# The params.yaml sections a training reads, logged flattened on its parent run.
TRAINING_SECTIONS = ("train", "distill", "evaluate", "baseline", "promote", "validate")


def training_params(params: Params) -> dict[str, str]:
    """`train.schedule.batch_size: 256`, ...: the sections a training uses, flattened, plus the
    dataset's name and target."""
    config = params.model_dump(mode="json", by_alias=True)
    flat = flatten({name: config[name] for name in TRAINING_SECTIONS})
    target = config["dataset"]["target"]
    return flat | {
        # which of the sizes above said `auto` (resolved from the measured volume)
        "auto": ", ".join(params.resolved) or "none",
        "dataset.name": params.dataset.name,
        "dataset.target": f"{target['name']} = {target['column']} {target['op']} {target['value']}",
    }


def flatten(config: dict, prefix: str = "") -> dict[str, str]:
    """A nested dict as dotted keys and string values (what MLflow params hold)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


def log_params(mlflow_client: Any, run_id: str, values: dict[str, str]) -> None:
    """Params on a run by id, in batches MLflow accepts (100 a call, values cut at 6000)."""
    from mlflow.entities import Param

    items = [Param(k, str(v)[:6000]) for k, v in values.items()]
    for start in range(0, len(items), 100):
        mlflow_client.log_batch(run_id, params=items[start : start + 100])


def end_run(store: TrackingConfig, run_id: str, status: str = "FINISHED") -> None:
    """Close a run opened by id (the parent of a training): FINISHED or FAILED, now."""
    client(store).set_terminated(run_id, status)


@contextlib.contextmanager
def failing_parent(store: TrackingConfig, run_id: str) -> Iterator[str]:
    """While a training runs: an error ends its parent run FAILED (its last stage ends it
    FINISHED, see `tasks.stages.promote`), then goes on up."""
    try:
        yield run_id
    except BaseException:
        with contextlib.suppress(Exception):  # the store's own fault must not hide the error
            end_run(store, run_id, "FAILED")
        raise


def log_datasets(store: TrackingConfig, run_id: str, datasets: list[tuple[Any, str]]) -> None:
    """MLflow datasets with their context (training, validation, testing) on a run by id: the
    same inputs the active run logs with `mlflow.log_input`."""
    from mlflow.tracking.fluent import _create_dataset_input

    inputs = [_create_dataset_input(dataset, context) for dataset, context in datasets]
    client(store).log_inputs(run_id, datasets=inputs)


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
