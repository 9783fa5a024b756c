"""Logging saved models to MLflow as pyfunc "models from code", registering versions with a
checksum of every file the model is rebuilt from, and loading them back verified."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
import warnings
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.core import tags as tag
from tasks.core.config import TrackingConfig
from tasks.core.errors import ModelIntegrityError
from tasks.core.layout import CONFIG_FILE, FEATURIZER_FILE, WEIGHTS_FILE
from tasks.registry import tracking

log = logging.getLogger(__name__)

TASKS_DIR = Path(__file__).resolve().parents[1]  # the whole package ships with each model
# Written out explicitly: MLflow's inference costs seconds and drops torch's +cpu label.
RUNTIME_PACKAGES = ("torch", "safetensors", "pandas", "numpy", "pyarrow", "mlflow")


def pip_requirements() -> list[str]:
    reqs = []
    for package in RUNTIME_PACKAGES:
        pinned = version(package)
        reqs.append(f"{package}=={pinned.split('+')[0]}")
    return reqs


# The version tag that records each file's SHA-256 at registration.
CHECKSUM_TAGS = {
    WEIGHTS_FILE: tag.WEIGHTS_SHA256,
    CONFIG_FILE: tag.CONFIG_SHA256,
    FEATURIZER_FILE: tag.FEATURIZER_SHA256,
}


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def file_checksums(folder: Path) -> dict[str, str]:
    """The checksum tags of a saved model folder."""
    return {key: _sha256(Path(folder) / file) for file, key in CHECKSUM_TAGS.items()}


def verify_checksums(folder: Path, tags: dict[str, str], label: str) -> None:
    """Refuse a model whose files differ from what was registered: flipped bits on disk, a
    truncated copy or a swapped file would otherwise serve silently wrong scores."""
    if not tags.get(CHECKSUM_TAGS[WEIGHTS_FILE]):
        raise ModelIntegrityError(
            f"{label}: no weights checksum was recorded at registration (the registration did "
            "not finish); it is not loaded: register the model again"
        )
    for file, key in CHECKSUM_TAGS.items():
        expected = tags.get(key)
        if expected is None:  # registered before config and featurizer were checksummed
            continue
        path = Path(folder) / file
        actual = _sha256(path) if path.is_file() else "missing"
        if actual != expected:
            raise ModelIntegrityError(
                f"{label}: {file} does not match the checksum recorded at registration "
                f"(sha256 {expected[:12]}…, found {actual[:12]}…): the artifact is corrupted or "
                "was altered, so it is not loaded; restore the artifact store from a backup, "
                "or roll back (`loopline rollback`) or retrain"
            )


def load_registered(store: TrackingConfig, name: str, model_version: str) -> tuple[Any, Any, Any]:
    """A registered version's network, featurizer and registry entry, its files checked against
    the registration checksums first. Rebuilt from JSON + safetensors by our own code: nothing
    is unpickled and no code stored with the model runs."""
    from mlflow.artifacts import download_artifacts
    from mlflow.models import Model

    from tasks.model.nets import load_model  # torch: only when a model is loaded

    details = tracking.client(store).get_model_version(name, model_version)
    with tempfile.TemporaryDirectory(prefix="loopline-model-") as tmp:
        local = Path(
            tracking.retrying(
                store,
                download_artifacts,
                artifact_uri=f"models:/{name}/{model_version}",
                dst_path=tmp,
            )
        )
        artifacts = Model.load(local).flavors["python_function"]["artifacts"]
        folder = local / artifacts["model_dir"]["path"]
        verify_checksums(folder, details.tags, f"{name} v{model_version}")
        model, featurizer = load_model(folder)
    return model, featurizer, details


@contextlib.contextmanager
def _quiet_integer_hint() -> Iterator[None]:
    """MLflow's JSON round trip of the example turns 5.0 into 5, and its schema hint about
    integer columns is moot: the featurizer imputes missing values."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        yield


def pyfunc_spec(folder: Path, example: pd.DataFrame) -> dict[str, Any]:
    """What MLflow needs to log or save the model folder as a pyfunc "model from code"."""
    from mlflow.models import infer_signature

    from tasks.model.nets import load_model  # torch: only when a model is loaded
    from tasks.model.predict import predict_proba  # torch, as above

    model, featurizer = load_model(folder)
    example = example[featurizer.columns].reset_index(drop=True)
    with _quiet_integer_hint():
        signature = infer_signature(
            example, pd.DataFrame({"score": predict_proba(model, featurizer, example)})
        )
    return {
        "python_model": str(TASKS_DIR / "model" / "pyfunc_model.py"),
        "artifacts": {"model_dir": str(Path(folder).resolve())},
        "code_paths": [str(TASKS_DIR)],
        "signature": signature,
        "input_example": example,
        "pip_requirements": pip_requirements(),
    }


def log_and_register(
    folder: Path,
    registered_name: str,
    example: pd.DataFrame,
    tags: dict[str, str],
    store: TrackingConfig,
) -> str:
    """Log the model folder as a pyfunc in the active run and register it; returns the version.
    The version is created with all its tags, checksums included, in one call: no reader ever
    sees a version without them. Store calls are retried on transient faults."""
    import mlflow

    checksums = file_checksums(folder)  # of the files about to be logged
    spec = pyfunc_spec(folder, example)
    with _quiet_integer_hint():
        info = tracking.retrying(store, mlflow.pyfunc.log_model, name="model", **spec)
    registered = tracking.retrying(
        store,
        mlflow.register_model,
        info.model_uri,
        registered_name,
        tags={**tags, **checksums, tag.MODEL_URI: info.model_uri},
    )
    model_version = str(registered.version)
    log.info(
        "registered %s version %s (%s)",
        registered_name,
        model_version,
        tags.get(tag.VARIANT),
    )
    return model_version


def describe_version(
    params: Any, name: str, model_version: str, what: str, record: Any, selection: str = ""
) -> str:
    """The registry descriptions a user reads in MLflow's UI: on the version, what it is, its
    training window, its runs (as links) and the gate's verdict (pending until the promote
    stage rewrites it); on the registered model, once, what its versions are."""
    store = params.tracking
    client = tracking.client(store)
    details = client.get_model_version(name, model_version)
    experiment = client.get_run(details.run_id).info.experiment_id if details.run_id else ""
    w = record.windows
    lines = [
        f"**{name} v{model_version}**: {what}; predicts `{params.dataset.target.name}` "
        f"(`{params.dataset.target.column} {params.dataset.target.op} "
        f"{params.dataset.target.value}`).",
        "",
        f"- training window {record.window.tag} (train {w.train.tag}, validation "
        f"{w.validation.tag}, test {w.test.tag}), data fingerprint `{record.data_fingerprint}`",
        f"- source run [{details.run_id}](#/experiments/{experiment}/runs/{details.run_id}) "
        f"in the training run [{record.parent_run_id}]"
        f"(#/experiments/{experiment}/runs/{record.parent_run_id})",
    ]
    if selection:
        lines.append(f"- selection: {selection}")
    lines += ["", f"{tag.VERDICT_PREFIX} pending (the promote stage judges it)"]
    description = "\n".join(lines)
    client.update_model_version(name, model_version, description=description)
    if not client.get_registered_model(name).description:
        client.update_registered_model(name, description=model_description(params, name))
    return description


def model_description(params: Any, name: str) -> str:
    """What a registered model of loopline holds, said once on the model."""
    kind = (
        "teacher networks (embeddings + MLP) the students are distilled from; not served"
        if name == params.registry.teacher_model_name
        else "candidates of the training flow (the variant `promote.select` chose); the version "
        f"aliased `{tag.CHAMPION}` serves, `{tag.CHALLENGER}` is the latest candidate the gate "
        f"refused, `{tag.PREVIOUS}` the champion before the last promotion"
    )
    target = params.dataset.target
    return (
        f"loopline: predicts `{target.name}` (`{target.column} {target.op} {target.value}`) "
        f"on {params.dataset.name}. Versions: {kind}. Each version's description gives its "
        "training window, its runs and the gate's verdict."
    )
