"""The featurizer: raw feature columns → model tensors, fitted on the training window only.

- categoricals: a vocabulary of values seen at least `min_count` times in training; index 0 is
  the out-of-vocabulary bucket (unseen values and nulls), counted, never refused;
- numerics: nulls imputed with the training median plus a missing indicator (for columns that
  had nulls in training), then standardised with the training mean and std.

It is saved as JSON next to the weights, so scoring needs no pickle and no training code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tasks.errors import LooplineError

OOV = 0
# Per categorical: the last Arrow dictionary seen and its vocabulary positions.
Lookups = dict[str, tuple[pa.Array, np.ndarray]]


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
        """Encode a pandas frame (the nightly batch, training windows)."""
        self._require(frame.columns)
        codes = {}
        for col in self.categorical:
            values = frame[col]
            if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
                values = values.astype(str).where(values.notna())  # vocabularies hold text
            codes[col] = (
                pd.Categorical(values, categories=self.vocabularies[col]).codes,
                values.notna().to_numpy(),
            )
        numbers = [
            pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)
            for col in self.numeric
        ]
        return self._encode(len(frame), codes, numbers)

    def transform_arrow(self, batch: pa.RecordBatch, lookups: Lookups | None = None) -> Encoded:
        """Encode Arrow data without a pandas detour: bulk scoring reads Parquet in batches and
        a categorical maps through its (small) dictionary instead of hashing every row.
        `lookups`, kept by the caller across a stream's batches, saves mapping a dictionary
        again while it stays the same (Parquet shares one per row group)."""
        self._require(batch.schema.names)
        lookups = {} if lookups is None else lookups
        codes = {}
        for col in self.categorical:
            codes[col] = self._arrow_codes(col, batch.column(col), lookups)
        numbers = [self._arrow_numbers(col, batch.column(col)) for col in self.numeric]
        return self._encode(batch.num_rows, codes, numbers)

    def _require(self, columns: Iterable[str]) -> None:
        missing = sorted(set(self.columns) - set(columns))
        if missing:
            raise LooplineError(f"featurizer: input lacks feature column(s) {missing}")

    def _arrow_codes(
        self, col: str, values: pa.Array, lookups: Lookups
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Vocabulary positions (-1: unseen or null) and the not-null mask of one column (None:
        no nulls)."""
        if not pa.types.is_dictionary(values.type):
            if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
                as_text = values.to_pandas()  # the same text a pandas frame would give
                values = pa.array(as_text.astype(str).where(as_text.notna()), pa.string())
            values = pc.dictionary_encode(values)
        known = lookups.get(col)
        if known is not None and known[0].equals(values.dictionary):
            lookup = known[1]
        else:
            vocabulary = pd.Index(self.vocabularies[col])
            lookup = vocabulary.get_indexer(values.dictionary.to_pandas().astype(str))
            lookup = np.append(lookup, -1).astype(np.int32)  # the last slot: nulls
            lookups[col] = (values.dictionary, lookup)
        if values.null_count == 0:  # the common case: two passes fewer
            return lookup[values.indices.to_numpy()], None
        indices = pc.fill_null(values.indices, len(lookup) - 1).to_numpy(zero_copy_only=False)
        return lookup[indices], values.is_valid().to_numpy(zero_copy_only=False)

    @staticmethod
    def _arrow_numbers(col: str, values: pa.Array) -> np.ndarray:
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
            raise LooplineError(
                f"featurizer: column {col!r} is {values.type}, expected numbers; fix the "
                "source's dtype (the nightly path quarantines such rows instead)"
            )
        return pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)

    def _encode(
        self,
        rows: int,
        codes: dict[str, tuple[np.ndarray, np.ndarray | None]],
        numbers: list[np.ndarray],
    ) -> Encoded:
        """The shared arithmetic: unseen and null categories to the OOV bucket (unseen ones
        counted), numerics imputed, standardised and flagged where missing."""
        # Column-major: each column is written and read as one contiguous run (the network
        # takes column slices, and concatenates them anyway).
        cats = np.empty((len(self.categorical), rows), dtype=np.int64)
        oov = {}
        for j, col in enumerate(self.categorical):
            positions, present = codes[col]
            np.add(positions, 1, out=cats[j])  # -1 (unseen or null) → 0, the OOV bucket
            unseen = positions == -1
            oov[col] = int((unseen if present is None else unseen & present).sum())
        nums = np.empty((self.numeric_width, rows), dtype=np.float32)
        for j, (col, values) in enumerate(zip(self.numeric, numbers, strict=True)):
            isnan = np.isnan(values)
            if isnan.any():
                values = np.where(isnan, self.medians[col], values)
            nums[j] = (values - self.means[col]) / self.stds[col]
            if col in self.missing_indicators:
                nums[len(self.numeric) + self.missing_indicators.index(col)] = isnan
        return Encoded(cats.T, nums.T, oov)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Featurizer:
        return cls(**json.loads(text))

    @classmethod
    def load(cls, path: Path) -> Featurizer:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
