"""Logging saved models to MLflow as pyfunc "models from code" and registering versions."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import warnings
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.nets import WEIGHTS_FILE

log = logging.getLogger(__name__)

TASKS_DIR = Path(__file__).resolve().parent
# Written out explicitly: MLflow's inference costs seconds and drops torch's +cpu label.
RUNTIME_PACKAGES = ("torch", "safetensors", "pandas", "numpy", "pyarrow", "mlflow")


def pip_requirements() -> list[str]:
    reqs = []
    for package in RUNTIME_PACKAGES:
        pinned = version(package)
        reqs.append(f"{package}=={pinned.split('+')[0]}")
    return reqs


def weights_checksum(folder: Path) -> str:
    return hashlib.sha256((Path(folder) / WEIGHTS_FILE).read_bytes()).hexdigest()


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

    from tasks.nets import load_model
    from tasks.predict import predict_proba

    model, featurizer = load_model(folder)
    example = example[featurizer.columns].reset_index(drop=True)
    with _quiet_integer_hint():
        signature = infer_signature(
            example, pd.DataFrame({"score": predict_proba(model, featurizer, example)})
        )
    return {
        "python_model": str(TASKS_DIR / "pyfunc_model.py"),
        "artifacts": {"model_dir": str(Path(folder).resolve())},
        "code_paths": [str(TASKS_DIR)],
        "signature": signature,
        "input_example": example,
        "pip_requirements": pip_requirements(),
    }


def log_and_register(
    folder: Path, registered_name: str, example: pd.DataFrame, tags: dict[str, str]
) -> str:
    """Log the model folder as a pyfunc in the active run, register it; returns the version."""
    import mlflow

    spec = pyfunc_spec(folder, example)
    with _quiet_integer_hint():
        info = mlflow.pyfunc.log_model(name="model", registered_model_name=registered_name, **spec)
    model_version = str(info.registered_model_version)
    client = mlflow.MlflowClient()
    all_tags = {
        **tags,
        "loopline.weights_sha256": weights_checksum(folder),
        "loopline.model_uri": info.model_uri,
    }
    for key, value in all_tags.items():
        client.set_model_version_tag(registered_name, model_version, key, value)
    log.info(
        "registered %s version %s (%s)",
        registered_name,
        model_version,
        tags.get("loopline.variant"),
    )
    return model_version
