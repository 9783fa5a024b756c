"""Reading tables with clear errors, and writing every output atomically (temp + rename).

A reader of any output either sees the previous complete version or the new complete version,
never a half-written file: a crash mid-write leaves only a hidden temp file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.errors import DataSourceError

PARQUET_MAGIC = b"PAR1"
log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `target`; on success rename it over `target` in one step."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def sweep_temps(target: str | Path) -> list[Path]:
    """Remove the temp files a killed writer of `target` left behind (they are hidden and no
    reader uses them). Only safe while the caller holds the lock that writers of `target` take."""
    target = Path(target)
    stale = sorted(target.parent.glob(f".{target.name}.*.tmp")) if target.parent.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


@contextlib.contextmanager
def exclusive_lock(lock_path: str | Path, waiting: str) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` for the block, logging `waiting` if another process
    holds it first. The kernel drops the lock when its holder dies: a run killed with -9 never
    blocks the next one."""
    import fcntl

    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info(waiting)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def write_text(target: str | Path, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_json(target: str | Path, payload: Any) -> Path:
    return write_text(target, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def write_metrics(target: str | Path, record: dict[str, Any]) -> Path:
    """A stage's metrics record as JSON at `target`, and its numbers alone (nested sections
    kept, booleans as 0/1; text, lists and nulls left out) at `numbers_file(target)`: what DVC
    shows, plots and diffs as metrics, with no selection, actor, fingerprint or timestamp."""
    from tasks.core.layout import numbers_file

    write_json(numbers_file(Path(target)), numbers_only(record))
    return write_json(target, record)


def numbers_only(record: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            if nested := numbers_only(value):
                kept[key] = nested
        elif isinstance(value, bool | np.bool_):
            kept[key] = int(value)
        elif isinstance(value, int | float | np.integer | np.floating):
            kept[key] = value.item() if isinstance(value, np.generic) else value
    return kept


def write_parquet(target: str | Path, frame: pd.DataFrame) -> Path:
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(target)


def write_partitioned(target_dir: str | Path, frame: pd.DataFrame, partition_col: str) -> Path:
    """Write a hive-partitioned Parquet dataset and swap it in for the old one as a whole.

    Each partition is one file written by the plain, synchronous Parquet writer: Arrow's
    threaded dataset writer can abort the process at exit (apache/arrow#36389, #36980).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    target_dir = Path(target_dir)
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = target_dir.parent / f".{target_dir.name}.{uuid.uuid4().hex}.tmp"
    try:
        staging.mkdir()
        if frame.empty:  # keep the schema: readers get a header-only table, not "no files"
            pq.write_table(
                pa.Table.from_pandas(frame, preserve_index=False), staging / "empty.parquet"
            )
        for value, part in frame.groupby(partition_col, sort=True):
            folder = staging / f"{partition_col}={value}"
            folder.mkdir()
            table = pa.Table.from_pandas(part.drop(columns=partition_col), preserve_index=False)
            pq.write_table(table, folder / "part-0.parquet")
        _swap_dir(staging, target_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target_dir


def _swap_dir(new: Path, target: Path) -> None:
    """Replace directory `target` by `new`; the old one is renamed aside first, then removed."""
    if target.exists():
        old = target.parent / f".{target.name}.{uuid.uuid4().hex}.old"
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV file, a Parquet file or a (partitioned) Parquet directory.

    Every failure names the file and what to do, instead of a reader's traceback.
    """
    path = Path(path)
    if not path.exists():
        raise DataSourceError(f"{path}: file not found")
    if path.is_dir():
        return _read_parquet_dir(path)
    if path.stat().st_size == 0:
        raise DataSourceError(f"{path}: file is empty (0 bytes); re-export the data")
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return _read_parquet_file(path)
    if suffix in {".csv", ".zip", ".gz"} or path.name.lower().endswith(".csv.zip"):
        return _read_csv(path)
    raise DataSourceError(
        f"{path}: unsupported file type {suffix!r}; use .csv, .parquet or a Parquet directory"
    )


def _read_parquet_file(path: Path) -> pd.DataFrame:
    with path.open("rb") as fh:
        head = fh.read(4)
        fh.seek(-4, os.SEEK_END)
        tail = fh.read(4)
    if head != PARQUET_MAGIC or tail != PARQUET_MAGIC:
        raise DataSourceError(
            f"{path}: not a Parquet file (missing the PAR1 magic bytes, truncated or another "
            "format); re-export it as Parquet"
        )
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataSourceError(f"{path}: corrupt Parquet file ({_first_line(exc)})") from None


def _read_parquet_dir(path: Path) -> pd.DataFrame:
    import pyarrow.dataset as ds

    files = [p for p in path.rglob("*.parquet") if not p.name.startswith(".")]
    if not files:
        raise DataSourceError(f"{path}: directory holds no .parquet files")
    try:
        table = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    except Exception as exc:
        raise DataSourceError(f"{path}: cannot read Parquet dataset ({_first_line(exc)})") from None
    frame = table.to_pandas()
    for col in frame.columns:  # hive partition keys come back as categoricals
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].astype(str)
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, low_memory=False)
    except pd.errors.EmptyDataError:
        raise DataSourceError(f"{path}: CSV has no header and no rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataSourceError(f"{path}: cannot parse CSV ({_first_line(exc)})") from None
    if frame.shape[1] == 1 and any(sep in str(frame.columns[0]) for sep in ";\t|"):
        raise DataSourceError(
            f"{path}: CSV parsed into a single column {frame.columns[0]!r}; "
            "the delimiter must be a comma"
        )
    # pandas renames a repeated header to `name.1`: which copy is meant cannot be known.
    header = pd.read_csv(path, header=None, nrows=1).iloc[0].astype(str)
    repeated = sorted(set(header[header.duplicated()]))
    if repeated:
        raise DataSourceError(
            f"{path}: column(s) {repeated} appear more than once in the header; "
            "each column name must be unique"
        )
    return frame


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def fingerprint(frame: pd.DataFrame) -> str:
    """Content hash of a table (values and column names, not row order of the index)."""
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
    digest = hashlib.sha256(hashes.tobytes())
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    return digest.hexdigest()[:16]


def tree_digest(path: str | Path) -> str | None:
    """Content hash of a file, or of every file under a folder with its relative name (None:
    nothing there). Hidden temp files of an interrupted write are left out."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    files = [f for f in files if not f.name.startswith(".")]
    if not files:
        return None
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(path) if file != path else file.name).encode())
        with file.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()[:16]


def parquet_rows(path: str | Path) -> int:
    """Rows of a Parquet file, from its footer: no column is read."""
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataSourceError(f"{path}: corrupt Parquet file ({_first_line(exc)})") from None


def read_partitions(folder: str | Path, column: str, start: str, end: str) -> pd.DataFrame:
    """Rows of a hive-partitioned dataset whose partition value lies in [start, end]."""
    import pyarrow.dataset as ds

    folder = Path(folder)
    if not folder.is_dir():
        raise DataSourceError(f"{folder}: dataset folder not found; run the stage that writes it")
    field = ds.field(column)
    try:
        dataset = ds.dataset(folder, format="parquet", partitioning="hive")
        table = dataset.to_table(filter=(field >= start) & (field <= end))
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataSourceError(
            f"{folder}: cannot read Parquet dataset ({_first_line(exc)}); "
            "rerun the stage that writes it"
        ) from None
    frame = table.to_pandas()
    if column in frame and isinstance(frame[column].dtype, pd.CategoricalDtype):
        frame[column] = frame[column].astype(str)
    return frame
