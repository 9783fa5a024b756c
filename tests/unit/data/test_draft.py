"""`loopline init`'s guesses on a tiny synthetic file: which column is the id, the event time,
the label; numeric ranges with a margin, closed sets, nullability; and the drafted params file
loads with the config model."""

from __future__ import annotations

import pytest
from helpers import SENSOR_ROWS as ROWS
from helpers import sensor_readings

from tasks.core.config import load_params
from tasks.data.draft import DraftError, draft, render, sample



def test_the_draft_guesses_id_time_label_and_rules_and_says_why():
    frame = sensor_readings()
    made = draft(frame, "plant-sensors", "data/raw/readings.csv", total_rows=5000)
    dataset = made.dataset
    assert dataset["id_columns"] == ["reading_id"] and dataset["event_time"] == "taken_at"
    assert dataset["target"] == {"name": "label", "column": "failed", "op": "==", "value": 1}
    assert dataset["window"] == {"start": "2024-01-01", "end": "2024-03-15"}
    assert dataset["features"] == {"categorical": ["site"], "numeric": ["shift", "temp"]}
    assert made.rules["site"] == {"values": ["east", "north", "south"], "nullable": False}
    assert made.rules["shift"] == {"min": 0, "max": 4, "nullable": False}  # whole numbers
    low, high = frame["temp"].min(), frame["temp"].max()
    assert made.rules["temp"]["nullable"] is True
    assert made.rules["temp"]["min"] < low and made.rules["temp"]["max"] > high
    assert "7 null" in made.notes["temp"] and "200 rows" in made.notes["temp"]
    assert set(made.left_out) == {"operator_note", "score"}
    assert "rename it in the source" in made.left_out["score"]


def test_the_drafted_params_file_loads_and_comments_every_guess(tmp_path, base_params_dict):
    made = draft(sensor_readings(), "plant-sensors", "data/raw/readings.csv", total_rows=5000)
    text = render(made, base_params_dict)
    path = tmp_path / "sensors.yaml"
    path.write_text(text)
    params = load_params(path)
    assert params.dataset.name == "plant-sensors" and params.registry.model_name == "plant-sensors"
    assert params.validate_.rules["shift"].max == 4
    assert text.startswith("# Drafted by `loopline init` from 200 of 5,000 rows of data/raw/")
    assert "# left out: operator_note: text with 200 distinct values" in text
    for column in ("site", "shift", "temp"):
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"{column}: {{"))
        assert "  # " in line and "in 200 rows" in line


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("taken_at", "no column parses as a date/time"),
        ("failed", "no column holds exactly two values"),
        ("reading_id", "no column is unique and never null"),
    ],
)
def test_a_sample_without_what_every_data_set_needs_is_one_line(drop, message):
    frame = sensor_readings().drop(columns=drop)
    if drop == "reading_id":
        frame = frame.drop(columns=["temp", "score", "operator_note"])
    with pytest.raises(DraftError, match=message):
        draft(frame, "x", "in.csv", total_rows=ROWS)


def test_sample_is_seeded_and_keeps_the_file_order():
    frame = sensor_readings()
    picked = sample(frame, rows=50)
    assert len(picked) == 50 and picked["reading_id"].is_monotonic_increasing
    assert picked.equals(sample(frame, rows=50))
