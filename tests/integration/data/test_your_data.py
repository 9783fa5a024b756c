"""A data set other than the flights through the real contract (real GX): synthetic sensor
readings whose shift is coded as numbers, and an upstream that renamed a column by its case.
Ingest writes the codes as text; the nightly batch delivers them as numbers; both pass the same
rule, and a code outside the set is quarantined with it."""

from __future__ import annotations

import copy
import datetime as dt

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import SENSORS_DATASET, SENSORS_RULES

from tasks.core.config import load_params
from tasks.data.ingest import build_feature_table
from tasks.data.nightly_validation import check_day
from tasks.data.sources import RawData
from tasks.data.validate import check_table
from tasks.data.contract import build_contract

DAY = dt.date(2024, 3, 5)
ROWS = 120


@pytest.fixture()
def sensors(tmp_path, base_params_dict):
    raw = dict(base_params_dict)
    raw["dataset"] = {**copy.deepcopy(SENSORS_DATASET), "leakage_columns": []}
    raw["validate"] = {**raw["validate"], "min_rows": 10, "rules": copy.deepcopy(SENSORS_RULES)}
    path = tmp_path / "sensors.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_params(path)


def _batch(shift: list) -> pd.DataFrame:
    """One day of readings as the upstream writes them: shift codes as int64."""
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "reading_id": [f"r{i}" for i in range(ROWS)],
            "taken_at": pd.date_range(f"{DAY} 00:05", periods=ROWS, freq="11min"),
            "site": rng.choice(["north", "south"], ROWS),
            "shift": shift,
            "temp": rng.normal(20, 5, ROWS),
            "hour": rng.integers(0, 24, ROWS).astype("int64"),
        }
    )


def test_numeric_codes_pass_as_text_in_the_table_and_as_numbers_in_a_batch(sensors, tmp_path):
    codes = list(np.resize([1, 2, 3], ROWS))
    raw = _batch([float(c) for c in codes]).assign(status=np.resize([0, 1], ROWS))
    table = build_feature_table(RawData(raw, "readings.csv"), sensors.dataset).frame
    assert set(table["shift"]) == {"1", "2", "3"}
    contract = build_contract(sensors.dataset, sensors.validate_.rules, min_rows=10)
    ingested = check_table(table, contract, "features", 0.02)
    assert ingested.success and len(ingested.quarantined) == 0

    batch = _batch(codes[:-2] + [4, 3])  # one code outside the set
    outcome = check_day(sensors, DAY, batch, tmp_path / f"{DAY}.parquet")
    assert outcome.success and len(outcome.clean) == ROWS - 1
    assert outcome.quarantined["reason"].tolist() == ["shift not in [1, 2, 3]"]


def test_a_column_renamed_by_case_fails_the_batch_with_a_close_name(sensors, tmp_path):
    batch = _batch(list(np.resize([1, 2, 3], ROWS))).rename(columns={"temp": "Temp"})
    outcome = check_day(sensors, DAY, batch, tmp_path / f"{DAY}.parquet")
    assert not outcome.success
    assert "column temp is missing (did you mean 'Temp' for 'temp'?)" in outcome.failures
