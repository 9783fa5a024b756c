"""The validation gate with real Great Expectations on a slice of the real data.

Each crafted bad input gets either the named gate error (and nothing new written) or a
quarantine with a reason (and the rest goes on).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import run_cli

from tasks.core.config import load_params
from tasks.core.errors import DataSourceError, ValidationGateError
from tasks.core.io import read_table, write_partitioned
from tasks.core.columns import EVENT_DATE
from tasks.data.validate import run_validate


def _stage(frame: pd.DataFrame) -> dict:
    """Write `frame` as the feature table of the temp project and run the validate stage."""
    params = load_params("params.yaml")
    write_partitioned(params.ingest.features_dir, frame, EVENT_DATE)
    return run_validate(params.dataset, params.validate_, params.ingest.features_dir)


def _quarantine() -> pd.DataFrame:
    return pd.read_parquet(load_params("params.yaml").validate_.quarantine_dir / "features.parquet")


def test_clean_slice_passes_and_writes_everything(project, feature_slice):
    report = _stage(feature_slice)
    params = load_params("params.yaml")
    assert report["success"] and report["quarantined_rows"] == 0
    validated = read_table(params.validate_.validated_dir)
    assert len(validated) == len(feature_slice)
    assert set(validated["flight_id"]) == set(feature_slice["flight_id"])
    saved = json.loads((params.validate_.report_dir / "features.json").read_text())
    assert saved["success"] is True and saved["rows"] == len(feature_slice)
    html = (params.validate_.report_dir / "features.html").read_text()
    assert "PASS" in html and "wind_speed within [0, 150]" in html
    # Passing checks read as what held, never in the words of their failure.
    assert "column carrier is present" in html and "column carrier is missing" not in html
    assert "wind_speed outside" not in html
    assert _quarantine().empty


def test_an_unchanged_table_is_not_checked_again(project, feature_slice):
    """A retrain reuses the last passing verdict only while the table, the contract and the
    validated output are exactly as they were; any change means a full check."""
    import yaml

    params = load_params("params.yaml")
    first = _stage(feature_slice)
    again = run_validate(params.dataset, params.validate_, params.ingest.features_dir)
    assert again["checked_at"] == first["checked_at"] and again["inputs_digest"]

    partition = next(params.validate_.validated_dir.rglob("*.parquet"))
    partition.unlink()  # the validated table lost a file: checked and written again
    run_validate(params.dataset, params.validate_, params.ingest.features_dir)
    assert partition.is_file()

    params_file = Path("params.yaml")
    base = yaml.safe_load(params_file.read_text())
    tightened = copy.deepcopy(base)
    tightened["validate"]["rules"]["distance"] = {"min": 1, "max": 500, "nullable": False}
    params_file.write_text(yaml.safe_dump(tightened))
    strict = load_params("params.yaml")
    with pytest.raises(ValidationGateError, match=r"distance outside \[1, 500\]"):
        run_validate(strict.dataset, strict.validate_, strict.ingest.features_dir)
    params_file.write_text(yaml.safe_dump(base))

    changed = feature_slice.copy()
    changed.loc[:1, "carrier"] = None
    report = _stage(changed)  # new bytes in the feature table
    assert report["quarantined_rows"] == 2


def _set(column: str, rows: int, value):
    """A corruption: the first `rows` rows of `column` become `value`."""

    def corrupt(frame: pd.DataFrame) -> None:
        frame.loc[: rows - 1, column] = value

    return corrupt


@pytest.mark.parametrize(
    ("corrupt", "reason", "bad_rows"),
    [
        (_set("carrier", 3, None), "carrier is null", 3),
        (_set("wind_speed", 1, 1048.4), "wind_speed outside [0, 150]", 1),
        (_set("temp", 2, np.inf), "temp outside [-40, 130]", 2),
        (_set("origin", 4, "XYZ"), "origin not in ['EWR', 'JFK', 'LGA']", 4),
        (
            _set("sched_dep_local", 2, pd.Timestamp("2014-02-01 08:00")),
            "sched_dep_local outside the window 2013-01-01..2013-12-31",
            2,
        ),
    ],
    ids=["null-required", "out-of-range", "inf", "closed-set", "wrong-date"],
)
def test_bad_rows_are_quarantined_with_reason(project, feature_slice, corrupt, reason, bad_rows):
    frame = feature_slice.copy()
    corrupt(frame)
    report = _stage(frame)
    quarantined = _quarantine()
    assert report["success"]
    assert len(quarantined) == bad_rows
    assert (quarantined["reason"] == reason).all(), quarantined["reason"].unique()
    validated = read_table(load_params("params.yaml").validate_.validated_dir)
    assert len(validated) == len(frame) - bad_rows
    assert not set(quarantined["flight_id"]) & set(validated["flight_id"])


def test_duplicated_ids_quarantine_every_copy(project, feature_slice):
    frame = pd.concat([feature_slice, feature_slice.iloc[[5, 7]]], ignore_index=True)
    _stage(frame)
    quarantined = _quarantine()
    assert len(quarantined) == 4  # both copies of each: nobody can tell which one is right
    assert set(quarantined["reason"]) == {"flight_id is duplicated"}


def test_a_row_breaking_two_rules_lists_both(project, feature_slice):
    frame = feature_slice.copy()
    frame.loc[0, ["carrier", "humid"]] = [None, 140.0]
    _stage(frame)
    assert _quarantine()["reason"].tolist() == ["carrier is null; humid outside [0, 100]"]


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        (lambda f: f.drop(columns=["distance"]), "column distance is missing"),
        (lambda f: f.assign(distance=f["distance"].astype(str)), "column distance must be one of"),
        (lambda f: f.head(0), "needs at least 100 rows (observed 0)"),
        (
            lambda f: f.assign(carrier=f["carrier"].where(f.index % 10 != 0, None)),
            "rows quarantined (10.0% > validate.max_bad_fraction 2.0%)",
        ),
    ],
    ids=["missing-column", "wrong-dtype", "header-only", "too-many-bad"],
)
def test_gate_failures_name_the_rule_and_write_nothing(project, feature_slice, corrupt, expected):
    params = load_params("params.yaml")
    _stage(feature_slice)  # a previous good run
    before = read_table(params.validate_.validated_dir)

    with pytest.raises(ValidationGateError) as err:
        _stage(corrupt(feature_slice.copy()))
    assert expected in str(err.value)
    assert "\n" not in str(err.value)
    after = read_table(params.validate_.validated_dir)
    pd.testing.assert_frame_equal(before, after)  # the failed gate changed nothing
    report = json.loads((params.validate_.report_dir / "features.json").read_text())
    assert report["success"] is False and any(expected in f for f in report["failures"])


def test_too_many_bad_lists_the_rule_that_broke(project, feature_slice):
    frame = feature_slice.assign(
        carrier=feature_slice["carrier"].where(feature_slice.index % 10 != 0)
    )
    with pytest.raises(ValidationGateError, match=r"carrier is null: \d+ row\(s\)"):
        _stage(frame)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.parquet", b"", "empty.parquet: file is empty"),
        (
            "notparquet.parquet",
            b"\x00\x01 definitely not parquet",
            "notparquet.parquet: not a Parquet file",
        ),
    ],
)
def test_unreadable_files_fail_before_validation(project, name, content, expected):
    params = load_params("params.yaml")
    path = project / name
    path.write_bytes(content)
    with pytest.raises(DataSourceError, match=expected):
        run_validate(params.dataset, params.validate_, params.ingest.features_dir, input_path=path)
    assert not params.validate_.report_dir.exists()


def test_cli_validate_input_reports_and_exits_1(project, feature_slice):
    bad = project / "batch.parquet"
    feature_slice.drop(columns=["origin", "dest"]).to_parquet(bad, index=False)
    code, _, stderr = run_cli("validate", "--input", str(bad), cwd=project)
    assert code == 1
    line = stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "column origin is missing" in line and "column dest is missing" in line
    assert (project / "reports" / "validation" / "batch.json").exists()
    assert not (project / "data" / "validated").exists()
