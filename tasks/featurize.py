"""The featurizer: raw feature columns → model tensors, fitted on the training window only.

- categoricals: a vocabulary of values seen at least `min_count` times in training; index 0 is
  the out-of-vocabulary bucket (unseen values and nulls), counted, never refused;
- numerics: nulls imputed with the training median plus a missing indicator (for columns that
  had nulls in training), then standardised with the training mean and std.

It is saved as JSON next to the weights, so scoring needs no pickle and no training code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.errors import LooplineError

OOV = 0


@dataclass(frozen=True)
class Encoded:
    """Model inputs: `categorical` int64 [rows, n_cat], `numeric` float32 [rows, n_num]."""

    categorical: np.ndarray
    numeric: np.ndarray
    oov_counts: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.categorical)


@dataclass(frozen=True)
class Featurizer:
    categorical: list[str]
    numeric: list[str]
    vocabularies: dict[str, list[str]]
    medians: dict[str, float]
    means: dict[str, float]
    stds: dict[str, float]
    missing_indicators: list[str]

    @classmethod
    def fit(
        cls, frame: pd.DataFrame, categorical: list[str], numeric: list[str], min_count: int
    ) -> Featurizer:
        vocabularies = {}
        for col in categorical:
            counts = frame[col].dropna().astype(str).value_counts()
            vocabularies[col] = sorted(counts[counts >= min_count].index.tolist())
        medians, means, stds = {}, {}, {}
        for col in numeric:
            values = frame[col].astype("float64")
            median = float(values.median()) if values.notna().any() else 0.0
            filled = values.fillna(median)
            medians[col] = median
            means[col] = float(filled.mean())
            stds[col] = float(filled.std(ddof=0)) or 1.0
        missing = [c for c in numeric if frame[c].isna().any()]
        return cls(categorical, numeric, vocabularies, medians, means, stds, missing)

    @property
    def cardinalities(self) -> list[int]:
        """Embedding table sizes: the vocabulary plus the out-of-vocabulary bucket."""
        return [len(self.vocabularies[c]) + 1 for c in self.categorical]

    @property
    def numeric_width(self) -> int:
        return len(self.numeric) + len(self.missing_indicators)

    @property
    def columns(self) -> list[str]:
        return [*self.categorical, *self.numeric]

    def transform(self, frame: pd.DataFrame) -> Encoded:
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise LooplineError(f"featurizer: input lacks feature column(s) {missing}")
        cats = np.empty((len(frame), len(self.categorical)), dtype=np.int64)
        oov = {}
        for j, col in enumerate(self.categorical):
            values = frame[col]
            if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
                values = values.astype(str).where(values.notna())  # vocabularies hold text
            codes = pd.Categorical(values, categories=self.vocabularies[col]).codes
            cats[:, j] = codes.astype(np.int64) + 1  # -1 (unseen or null) → 0, the OOV bucket
            oov[col] = int(((codes == -1) & values.notna().to_numpy()).sum())
        nums = np.empty((len(frame), self.numeric_width), dtype=np.float32)
        for j, col in enumerate(self.numeric):
            values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)
            isnan = np.isnan(values)
            values = np.where(isnan, self.medians[col], values)
            nums[:, j] = (values - self.means[col]) / self.stds[col]
            if col in self.missing_indicators:
                nums[:, len(self.numeric) + self.missing_indicators.index(col)] = isnan
        return Encoded(cats, nums, oov)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Featurizer:
        return cls(**json.loads(text))

    @classmethod
    def load(cls, path: Path) -> Featurizer:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
