"""The drift reference: a seeded sample of a model's test days (the newest days of its window,
which it was not fitted on) with the model's own scores, saved as an artifact of the run that
registered the model. Every later batch served by that model is compared with it: score drift
against out-of-sample scores, feature drift against the days the model was last judged on."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.core.columns import SCORE
from tasks.core.config import Params
from tasks.core.layout import REFERENCE_ARTIFACT


def log_reference(params: Params, frame: pd.DataFrame, scores: np.ndarray) -> int:
    """Save a seeded sample of `frame` (the test days), with the model's scores, to the active run:
    the baseline every later batch is compared with once this model serves."""
    import mlflow

    cfg = params.drift
    sample = frame[params.dataset.features.names].assign(**{SCORE: scores})
    if len(sample) > cfg.reference_rows:
        sample = sample.sample(cfg.reference_rows, random_state=cfg.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(REFERENCE_ARTIFACT).name
        sample.reset_index(drop=True).to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=str(Path(REFERENCE_ARTIFACT).parent))
    return len(sample)


def load_reference(run_id: str) -> pd.DataFrame:
    import mlflow

    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=REFERENCE_ARTIFACT)
    return pd.read_parquet(local)
