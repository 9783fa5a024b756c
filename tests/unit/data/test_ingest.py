"""Ingest: the raw joins on tiny frames, the label rule, leakage, and the real data slice."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from helpers import SLICE_DAYS, run_cli

from tasks.core.config import load_params
from tasks.core.errors import IngestError
from tasks.core.io import read_table
from tasks.core.columns import EVENT_DATE
from tasks.data.ingest import build_feature_table, run_ingest
from tasks.data.sources import RawData, join_flights

LEAKAGE = {"dep_time", "dep_delay", "arr_time", "air_time", "arr_delay"}


def _tiny_flights() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "year": [2013, 2013, 2013],
            "month": [3, 3, 3],
            "day": [10, 10, 10],
            "hour": [1, 5, 5],
            "minute": [30, 0, 45],
            "sched_dep_time": [130, 500, 545],
            "carrier": ["UA", "AA", "B6"],
            "flight": [1, 2, 3],
            "tailnum": ["N1", "N2", None],
            "origin": ["EWR", "JFK", "JFK"],
            "time_hour": ["2013-03-10T06:00:00Z"] * 3,
        }
    )


def _tiny_weather() -> pd.DataFrame:
    # Two readings for JFK at 05h (as around a DST switch): must not duplicate flights.
    return pd.DataFrame(
        {
            "origin": ["JFK", "JFK"],
            "year": [2013, 2013],
            "month": [3, 3],
            "day": [10, 10],
            "hour": [5, 5],
            "temp": [40.0, 99.0],
            "dewp": [1.0, 1.0],
            "humid": [50.0, 50.0],
            "wind_dir": [10.0, 10.0],
            "wind_speed": [5.0, 5.0],
            "precip": [0.0, 0.0],
            "pressure": [1010.0, 1010.0],
            "visib": [10.0, 10.0],
        }
    )


def _tiny_planes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tailnum": ["N2"],
            "year": [2001.0],
            "type": ["Fixed wing multi engine"],
            "manufacturer": ["BOEING"],
            "model": ["737"],
            "engines": [2],
            "seats": [150],
            "speed": [None],
            "engine": ["Turbo-fan"],
        }
    )


def test_join_keeps_one_row_per_flight_and_measures_coverage():
    out, coverage = join_flights(_tiny_flights(), _tiny_weather(), _tiny_planes())
    assert len(out) == 3
    assert coverage == {"weather": round(2 / 3, 4), "plane": round(1 / 3, 4)}
    jfk_0500 = out.set_index("flight").loc[2]
    assert jfk_0500["temp"] == 40.0  # first reading of the duplicated hour
    assert jfk_0500["plane_seats"] == 150
    assert pd.isna(out.set_index("flight").loc[1, "temp"])  # EWR 01h has no reading


def test_event_time_is_scheduled_local_departure_not_utc():
    out, _ = join_flights(_tiny_flights(), _tiny_weather(), _tiny_planes())
    # time_hour says 06:00Z for all three; the event time follows the local schedule instead.
    assert list(out["sched_dep_local"].dt.strftime("%H:%M")) == ["01:30", "05:00", "05:45"]
    assert list(out["weekday"]) == [6, 6, 6]  # 2013-03-10 was a Sunday
    assert out["flight_id"].tolist() == [
        "2013-03-10_UA1_EWR",
        "2013-03-10_AA2_JFK",
        "2013-03-10_B63_JFK",
    ]


def test_label_rule_drops_unlabelled_and_leakage(raw_slice, base_params_dict):
    from tasks.core.config import Params

    dataset = Params.model_validate(base_params_dict).dataset
    table = build_feature_table(RawData(raw_slice, "slice"), dataset)
    frame = table.frame
    labelled = raw_slice["arr_delay"].notna()
    assert len(frame) == int(labelled.sum())
    assert table.summary["dropped_no_label"] == int((~labelled).sum()) > 0  # cancellations exist
    expected = (raw_slice.loc[labelled, "arr_delay"] > 15).astype("int8").to_numpy()
    assert (frame["delayed"].to_numpy() == expected).all()
    assert not LEAKAGE & set(frame.columns)
    assert frame[EVENT_DATE].min() == "2013-01-01"
    assert frame[EVENT_DATE].max() == f"2013-01-{SLICE_DAYS:02d}"
    assert 0.1 < table.summary["positive_rate"] < 0.5


def test_missing_column_is_named(raw_slice, base_params_dict):
    from tasks.core.config import Params

    dataset = Params.model_validate(base_params_dict).dataset
    with pytest.raises(IngestError, match=r"slice: missing column\(s\) \['distance'\]"):
        build_feature_table(RawData(raw_slice.drop(columns=["distance"]), "slice"), dataset)


def test_header_only_source_is_refused(raw_slice, base_params_dict):
    from tasks.core.config import Params

    dataset = Params.model_validate(base_params_dict).dataset
    with pytest.raises(IngestError, match="header but no rows"):
        build_feature_table(RawData(raw_slice.head(0), "empty.csv"), dataset)


def test_ingest_stage_from_csv_and_parquet_agree(project, raw_slice):
    """A CSV path and a Parquet path give the same table: the file source is not a special case."""
    params = load_params("params.yaml")
    parquet_summary = run_ingest(params.dataset, params.ingest)
    parquet_table = read_table(params.ingest.features_dir)

    csv_path = project / "flights.csv"
    raw_slice.to_csv(csv_path, index=False)
    text = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(
        text.replace(str(params.dataset.source.path), str(csv_path))
    )
    params = load_params("params.yaml")
    csv_summary = run_ingest(params.dataset, params.ingest)

    assert csv_summary["rows"] == parquet_summary["rows"] == len(parquet_table)
    assert csv_summary["positive_rate"] == parquet_summary["positive_rate"]
    partitions = sorted(p.name for p in params.ingest.features_dir.iterdir())
    assert partitions[0] == "event_date=2013-01-01" and len(partitions) == SLICE_DAYS
    summary = json.loads(params.ingest.summary_path.read_text())
    assert summary["rows"] == len(parquet_table)
    assert set(summary) >= {"date_min", "date_max", "positive_rate", "join_coverage", "fingerprint"}


def test_cli_ingest_on_unreadable_source_is_one_line(project):
    (project / "broken.parquet").write_bytes(b"PAR1 but not really")
    text = (project / "params.yaml").read_text()
    params = load_params("params.yaml")
    (project / "params.yaml").write_text(
        text.replace(str(params.dataset.source.path), str(project / "broken.parquet"))
    )
    code, _, stderr = run_cli("ingest", cwd=project)
    assert code == 1
    assert stderr.strip().count("\n") == 0
    assert "broken.parquet: not a Parquet file" in stderr
    assert not (project / "data" / "features").exists()
