"""MLflow "model from code": rebuilds the network from JSON + safetensors, no pickle to trust.

MLflow executes this file when loading `models:/NAME/VERSION`; `artifacts["model_dir"]` is the
saved model folder (config.json, weights.safetensors, featurizer.json).
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class LooplineModel(PythonModel):
    def load_context(self, context) -> None:
        from tasks.model.nets import load_model  # torch: only when MLflow loads the model

        self.model, self.featurizer = load_model(Path(context.artifacts["model_dir"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from tasks.model.predict import predict_proba  # torch, as above

        return pd.DataFrame({"score": predict_proba(self.model, self.featurizer, model_input)})


mlflow.models.set_model(LooplineModel())
