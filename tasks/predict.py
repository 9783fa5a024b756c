"""Scoring raw feature frames with a saved network: featurize → forward → probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from tasks.featurize import Featurizer


@torch.inference_mode()
def predict_proba(
    model: nn.Module, featurizer: Featurizer, frame: pd.DataFrame, batch_size: int = 65536
) -> np.ndarray:
    """Probabilities for the rows of `frame` (raw feature columns; others are ignored)."""
    out = np.empty(len(frame), dtype=np.float32)
    for start in range(0, len(frame), batch_size):
        encoded = featurizer.transform(frame.iloc[start : start + batch_size])
        logits = model(torch.from_numpy(encoded.categorical), torch.from_numpy(encoded.numeric))
        out[start : start + len(logits)] = torch.sigmoid(logits).numpy()
    return out


@torch.inference_mode()
def predict_logits(model: nn.Module, featurizer: Featurizer, frame: pd.DataFrame) -> np.ndarray:
    encoded = featurizer.transform(frame)
    return model(torch.from_numpy(encoded.categorical), torch.from_numpy(encoded.numeric)).numpy()
