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
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tasks.core.categories import category_text
from tasks.core.errors import LooplineError

OOV = 0
# Plain text columns up to this many rows are encoded by a dict lookup per value, longer ones
# through Arrow's dictionary encoding and a lookup per distinct value. One categorical of 100
# values, each batch new (online), best of 5, measured with a pandas lookup per distinct value:
# 1 row 3 vs 301 µs, 256 rows 69 vs 421, 1,024 257 vs 473, 4,096 664 vs 511. Online batches
# hold at most api.max_batch_rows.
SMALL_BATCH_ROWS = 1024


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
        cats, nums = _buffers(len(self.categorical), self.numeric_width, len(frame))
        oov = {}
        for j, col in enumerate(self.categorical):
            values = frame[col]
            values = category_text(values)  # vocabularies hold text
            positions = pd.Categorical(values, categories=self.vocabularies[col]).codes
            np.add(positions, 1, out=cats[j])  # -1 (unseen or null) → 0, the OOV bucket
            oov[col] = int(((positions == -1) & values.notna().to_numpy()).sum())
        numbers = [
            pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)
            for col in self.numeric
        ]
        self._standardize(numbers, nums)
        return Encoded(cats.T, nums.T, oov)

    def transform_arrow(self, batch: pa.RecordBatch) -> Encoded:
        """Encode one Arrow batch; a stream of them goes through an `ArrowEncoder`, which
        keeps what it can between batches."""
        return ArrowEncoder(self)(batch)

    def _require(self, columns: Iterable[str]) -> None:
        missing = sorted(set(self.columns) - set(columns))
        if missing:
            raise LooplineError(f"featurizer: input lacks feature column(s) {missing}")

    def _standardize(
        self,
        numbers: list[np.ndarray],
        out: np.ndarray,
        nulls: list[np.ndarray | None] | None = None,
    ) -> None:
        """The shared numeric arithmetic, in float32 (what the network takes), into `out`
        [numeric_width, rows]: standardised with the training mean and std, missing values
        (NaN, or marked in `nulls`, where the number is arbitrary) imputed with the training
        median and flagged in their indicator rows."""
        width = len(self.numeric)
        block = out[:width]
        with np.errstate(over="ignore", invalid="ignore"):  # whatever lies under a null
            for j, values in enumerate(numbers):
                block[j] = values  # as float32, in place: no fresh array to fault in
        missing = np.isnan(block)
        for j, null in enumerate(nulls or ()):
            if null is not None:
                missing[j] |= null
        # One operation over all columns, not one per column: for the rows of an online
        # request the per-call overhead is the whole cost. The same float32 arithmetic.
        mean, std, fill, flagged = self._scaling
        np.subtract(block, mean, out=block)
        np.divide(block, std, out=block)
        if missing.any():
            np.copyto(block, np.broadcast_to(fill, block.shape), where=missing)
        out[width:] = missing[flagged]

    @cached_property
    def _scaling(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
        """Per numeric column, as float32 columns: mean, std and the standardised median that
        fills a missing value; and the columns with a missing indicator, in order."""
        mean, std, median = (
            np.array([stat[col] for col in self.numeric], dtype=np.float32)[:, None]
            for stat in (self.means, self.stds, self.medians)
        )
        flagged = [self.numeric.index(col) for col in self.missing_indicators]
        return mean, std, (median - mean) / std, flagged

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Featurizer:
        return cls(**json.loads(text))

    @classmethod
    def load(cls, path: Path) -> Featurizer:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


class ArrowEncoder:
    """Encodes a stream of Arrow batches (bulk scoring reads Parquet in batches) without a
    pandas detour, keeping between batches what it can:

    - per categorical, the code of each value of its Arrow dictionary: Parquet shares one
      dictionary per row group, so a column maps through its few distinct values, not per row;
    - the output arrays: fresh multi-MB arrays for every batch cost the kernel's page faults,
      measured at half of all featurizing time.

    So an `Encoded` it returns is valid until its next call.
    """

    def __init__(self, featurizer: Featurizer):
        self.featurizer = featurizer
        self._lookups: dict[str, tuple[pa.Array, np.ndarray, bool]] = {}
        # Each vocabulary as a dict of codes, built once: online batches of a few rows bring
        # new values each time.
        self._code_of = {
            col: {value: i + 1 for i, value in enumerate(featurizer.vocabularies[col])}
            for col in featurizer.categorical
        }
        self._cats = np.empty((len(featurizer.categorical), 0), dtype=np.int64)
        self._nums = np.empty((featurizer.numeric_width, 0), dtype=np.float32)

    def __call__(self, batch: pa.RecordBatch) -> Encoded:
        featurizer = self.featurizer
        featurizer._require(batch.schema.names)
        rows = batch.num_rows
        if rows > self._cats.shape[1]:
            self._cats, self._nums = _buffers(
                len(featurizer.categorical), featurizer.numeric_width, rows
            )
        cats, nums = self._cats[:, :rows], self._nums[:, :rows]
        oov = {
            col: self._codes(col, batch.column(col), cats[j])
            for j, col in enumerate(featurizer.categorical)
        }
        columns = [_numbers(col, batch.column(col)) for col in featurizer.numeric]
        featurizer._standardize([n for n, _ in columns], nums, [nulls for _, nulls in columns])
        return Encoded(cats.T, nums.T, oov)

    def _codes(self, col: str, values: pa.Array, out: np.ndarray) -> int:
        """Write the column's codes (0: unseen or null, the OOV bucket) into `out`; return
        how many values were unseen in training (nulls are not counted)."""
        if not pa.types.is_dictionary(values.type):
            if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
                as_text = category_text(values.to_pandas())  # as a pandas frame would give
                values = pa.array(as_text, pa.string())
            if len(values) <= SMALL_BATCH_ROWS:
                return self._small_codes(col, values.to_pylist(), out)
            values = pc.dictionary_encode(values)
        known = self._lookups.get(col)
        if known is not None and known[0].equals(values.dictionary):
            _, lookup, any_unseen = known
        else:
            code_of = self._code_of[col]
            codes = [code_of.get(text, OOV) for text in values.dictionary.to_pandas().astype(str)]
            lookup = np.array([*codes, OOV], dtype=np.int64)  # the last slot: nulls
            any_unseen = OOV in codes
            self._lookups[col] = (values.dictionary, lookup, any_unseen)
        indices = values.indices
        if values.null_count:
            indices = pc.fill_null(indices, len(lookup) - 1)
        np.take(lookup, indices.to_numpy(), out=out, mode="clip")  # clip: no bounds pass
        if not any_unseen:  # the common case: no pass to count
            return 0
        return int(np.count_nonzero(out == OOV)) - values.null_count

    def _small_codes(self, col: str, texts: list[str | None], out: np.ndarray) -> int:
        """`_codes` for a few rows of text: the same codes by a dict lookup per value
        (SMALL_BATCH_ROWS)."""
        code_of = self._code_of[col]
        out[:] = [OOV if text is None else code_of.get(text, OOV) for text in texts]
        return sum(text is not None and text not in code_of for text in texts)


def _numbers(col: str, values: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    """A numeric column's float64 numbers, read in place, and its null mask (None: no nulls):
    the number under a null is arbitrary. Arrow's own conversion, which writes NaN under each
    null into a copy, took 3x as long. Text where numbers belong is an error."""
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        raise LooplineError(
            f"featurizer: column {col!r} is {values.type}, expected numbers; fix the "
            "source's dtype (the nightly path quarantines such rows instead)"
        )
    if not pa.types.is_float64(values.type):
        values = pc.cast(values, pa.float64(), safe=False)
    rows, offset = len(values), values.offset
    validity, data = values.buffers()[:2]
    numbers = np.frombuffer(data, dtype=np.float64, count=rows, offset=offset * 8)
    if values.null_count == 0:
        return numbers, None
    valid = np.unpackbits(
        np.frombuffer(validity, dtype=np.uint8), count=offset + rows, bitorder="little"
    )
    return numbers, valid[offset:] == 0


def _buffers(categorical: int, numeric: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Encoded arrays, column-major: each column is written and read as one contiguous run
    (the network takes column slices, and concatenates them anyway)."""
    return (
        np.empty((categorical, rows), dtype=np.int64),
        np.empty((numeric, rows), dtype=np.float32),
    )
