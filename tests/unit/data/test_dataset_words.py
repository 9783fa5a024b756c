"""A data set other than the flights, in its own words: columns named like loopline's own are
refused at config load (or ingested when unused), category codes given as numbers, and close
names for a misspelled column, case changes included. Tiny synthetic sensor readings."""

from __future__ import annotations

import copy
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import SENSORS_DATASET, SENSORS_RULES

from tasks.core.categories import category_text, code_text
from tasks.core.columns import EVENT_DATE, RESERVED, renamed_hint
from tasks.core.config import Params, load_params
from tasks.core.errors import ConfigError, IngestError
from tasks.data.contract import category_types, value_set
from tasks.data.ingest import build_feature_table
from tasks.data.sources import RawData
from tasks.model.featurize import Featurizer



def sensors_params(base: dict, **dataset: object) -> dict:
    raw = copy.deepcopy(base)
    raw["dataset"] = {**copy.deepcopy(SENSORS_DATASET), **dataset}
    raw["validate"] = {**raw["validate"], "rules": copy.deepcopy(SENSORS_RULES)}
    return raw


def readings(rows: int = 6) -> pd.DataFrame:
    """Raw readings: the shift code as numbers with a gap (so pandas stores it as float64)."""
    return pd.DataFrame(
        {
            "reading_id": [f"r{i}" for i in range(rows)],
            "taken_at": pd.date_range("2024-03-01 06:00", periods=rows, freq="5h"),
            "site": (["north", "south"] * rows)[:rows],
            "shift": ([1.0, 2.0, np.nan, 3.0] * rows)[:rows],
            "temp": np.linspace(-5, 25, rows),
            "hour": [6, 11, 16, 21, 2, 7][:rows],
            "status": [0, 1, 0, 0, 1, 0][:rows],
            "repaired_at": [None] * rows,
        }
    )


def _load(tmp_path, raw: dict) -> Params:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_params(path)


ROLES = {
    "feature": lambda name: {"features": {"categorical": ["site", "shift"], "numeric": [name]}},
    "id": lambda name: {"id_columns": [name]},
    "event-time": lambda name: {"event_time": name},
    "label": lambda name: {"target": {**SENSORS_DATASET["target"], "name": name}},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(RESERVED))
def test_a_column_named_like_an_internal_one_is_refused_at_load(
    tmp_path, base_params_dict, name, role
):
    raw = sensors_params(base_params_dict, **ROLES[role](name))
    raw["validate"]["rules"].pop("temp")
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, raw)
    text = str(raised.value)
    assert "\n" not in text and text.startswith(f"{tmp_path / 'params.yaml'}: dataset")
    assert f"column {name!r} has the name loopline gives {RESERVED[name]}" in text
    assert "rename it in the source and here" in text


def test_source_columns_named_like_internal_ones_are_ingested_when_unused(base_params_dict):
    """Only the columns the dataset names reach loopline's tables: unused ones are dropped."""
    dataset = Params.model_validate(sensors_params(base_params_dict)).dataset
    raw = readings().assign(**{name: "upstream's own" for name in RESERVED})
    table = build_feature_table(RawData(raw, "readings.csv"), dataset).frame
    assert list(table[EVENT_DATE]) == [str(t.date()) for t in raw["taken_at"]]
    assert not (set(RESERVED) - {EVENT_DATE}) & set(table.columns)


def test_numeric_category_codes_are_one_text_whatever_the_file_stored(base_params_dict):
    params = Params.model_validate(sensors_params(base_params_dict))
    assert params.validate_.rules["shift"].values == [1, 2, 3]  # numbers stay numbers
    table = build_feature_table(RawData(readings(), "readings.csv"), params.dataset).frame
    assert list(table["shift"]) == ["1", "2", None, "3", "1", "2"]  # not "1.0"
    featurizer = Featurizer.fit(table, ["site", "shift"], ["temp", "hour"], min_count=1)
    as_ints = table.assign(shift=pd.array([1, 2, None, 3, 1, 2], dtype="Int64"))
    as_floats = table.assign(shift=[1.0, 2.0, np.nan, 3.0, 1.0, 2.0])
    for frame in (as_ints, as_floats):  # a nightly batch as the upstream writes it
        encoded = featurizer.transform(frame)
        assert (encoded.categorical == featurizer.transform(table).categorical).all()
        assert encoded.oov_counts["shift"] == 0


def test_codes_as_numbers_match_text_and_numeric_columns(base_params_dict):
    rules = Params.model_validate(sensors_params(base_params_dict)).validate_.rules
    allowed = value_set(rules["shift"].values)
    assert pd.Series(["1", "3"]).isin(allowed).all() and pd.Series([1, 3]).isin(allowed).all()
    assert pd.Series([1.0, 2.0]).isin(allowed).all() and not pd.Series([4, "4"]).isin(allowed).any()
    assert "int64" in category_types(rules["shift"])  # a numeric column is accepted
    assert "int64" not in category_types(rules["site"])  # text codes: numbers are a recoding
    assert (code_text(2.0), code_text(2.5), code_text("B")) == ("2", "2.5", "B")
    assert category_text(pd.Series([1.5, np.nan])).tolist()[0] == "1.5"


@pytest.mark.parametrize(
    ("missing", "present", "hint"),
    [
        ("temp", ["Temp", "hour"], "(did you mean 'Temp' for 'temp'?)"),
        ("temp", ["TEMP"], "(did you mean 'TEMP' for 'temp'?)"),
        ("distance", ["distanse"], "(did you mean 'distanse' for 'distance'?)"),
        ("temp", ["pressure"], ""),
    ],
)
def test_close_names_for_a_missing_column_include_case_changes(missing, present, hint):
    assert renamed_hint([missing], pd.Index(present)) == (f" {hint}" if hint else "")


def test_ingest_names_the_column_renamed_by_case_and_the_params_file(tmp_path, base_params_dict):
    params = _load(tmp_path, sensors_params(base_params_dict))
    raw = readings().rename(columns={"temp": "Temp"})
    with pytest.raises(IngestError) as raised:
        build_feature_table(RawData(raw, "readings.csv"), params.dataset, params.file)
    text = str(raised.value)
    assert re.match(r"readings\.csv: missing column\(s\) \['temp'\]", text)
    assert f"named in the dataset section of {tmp_path / 'params.yaml'}" in text
    assert "(did you mean 'Temp' for 'temp'?)" in text
