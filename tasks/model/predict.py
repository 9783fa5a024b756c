"""The one scoring path: raw rows → featurizer → network → probabilities.

Nightly scoring, bulk scoring, the pyfunc model, evaluation, the gate and the benchmarks all
score through these functions, so a model scores the same rows the same way everywhere.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from tasks.model.featurize import Encoded, Featurizer

# Rows per forward pass: activations of a slice this size stay in the core's cache (the
# student scored 10-20 % more rows/s than on whole 50k-row batches).
FORWARD_ROWS = 8192
# Rows featurized at a time from a pandas frame: the encoded copy never exceeds one chunk.
CHUNK_ROWS = 65536


@torch.inference_mode()
def forward(
    model: nn.Module, categorical: torch.Tensor, numeric: torch.Tensor, logits: bool = False
) -> np.ndarray:
    """The network on encoded rows, FORWARD_ROWS at a time: probabilities (or raw logits)."""
    out = np.empty(len(categorical), dtype=np.float32)
    for start in range(0, len(categorical), FORWARD_ROWS):
        end = start + FORWARD_ROWS
        result = model(categorical[start:end], numeric[start:end])
        target = torch.from_numpy(out[start:end])
        if logits:
            target.copy_(result)
        else:
            torch.sigmoid(result, out=target)
    return out


def forward_encoded(model: nn.Module, encoded: Encoded, logits: bool = False) -> np.ndarray:
    return forward(
        model, torch.from_numpy(encoded.categorical), torch.from_numpy(encoded.numeric), logits
    )


def predict_with_unseen(
    model: nn.Module, featurizer: Featurizer, frame: pd.DataFrame, chunk_rows: int = CHUNK_ROWS
) -> tuple[np.ndarray, dict[str, int]]:
    """Probabilities for the rows of `frame` (raw feature columns; others are ignored), plus
    how many values of each categorical fell into the out-of-vocabulary bucket."""
    scores = np.empty(len(frame), dtype=np.float32)
    unseen: dict[str, int] = dict.fromkeys(featurizer.categorical, 0)
    for start in range(0, len(frame), chunk_rows):
        encoded = featurizer.transform(frame.iloc[start : start + chunk_rows])
        scores[start : start + len(encoded)] = forward_encoded(model, encoded)
        for col, count in encoded.oov_counts.items():
            unseen[col] += count
    return scores, unseen


def predict_proba(
    model: nn.Module, featurizer: Featurizer, frame: pd.DataFrame, chunk_rows: int = CHUNK_ROWS
) -> np.ndarray:
    """Probabilities for the rows of `frame` (raw feature columns; others are ignored)."""
    return predict_with_unseen(model, featurizer, frame, chunk_rows)[0]


def predict_logits(model: nn.Module, featurizer: Featurizer, frame: pd.DataFrame) -> np.ndarray:
    """Raw logits (distillation's soft targets), featurized in one go."""
    return forward_encoded(model, featurizer.transform(frame), logits=True)
