"""Readers name the file and the problem; writers never leave a half-written output."""

from __future__ import annotations

import pandas as pd
import pytest

from tasks.core.errors import DataSourceError
from tasks.core.io import atomic_path, read_table, write_parquet, write_partitioned


def test_failed_write_keeps_previous_file(tmp_path):
    target = tmp_path / "out.parquet"
    write_parquet(target, pd.DataFrame({"a": [1, 2]}))
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash mid-write")
    assert pd.read_parquet(target)["a"].tolist() == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]  # no temp file left


def test_partitioned_write_replaces_whole_dataset(tmp_path):
    target = tmp_path / "features"
    write_partitioned(target, pd.DataFrame({"d": ["x", "y"], "v": [1, 2]}), "d")
    write_partitioned(target, pd.DataFrame({"d": ["z"], "v": [3]}), "d")
    assert sorted(p.name for p in target.iterdir()) == ["d=z"]
    assert read_table(target)["v"].tolist() == [3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.parquet", b"", "file is empty"),
        ("text.parquet", b"id,value\n1,2\n", "not a Parquet file"),
        ("table.xlsx", b"PK\x03\x04", "unsupported file type"),
        ("headless.csv", b"", "file is empty"),
        ("semicolons.csv", b"id;value\n1;2\n", "the delimiter must be a comma"),
    ],
)
def test_unreadable_inputs_name_file_and_fix(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataSourceError, match=message) as err:
        read_table(path)
    assert str(err.value).startswith(str(path))


def test_truncated_parquet_is_refused(tmp_path):
    path = tmp_path / "cut.parquet"
    pd.DataFrame({"a": range(1000)}).to_parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataSourceError, match=r"cut\.parquet: not a Parquet file"):
        read_table(path)


def test_missing_path(tmp_path):
    with pytest.raises(DataSourceError, match="file not found"):
        read_table(tmp_path / "nope.csv")
