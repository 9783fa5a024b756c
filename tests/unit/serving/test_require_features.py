"""Each model scores with its own feature list: an input lacking one of its columns fails in one
line naming the input, the model and the columns (never a KeyError), and the unseen-values guard
points to the docs on cyclical values."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tasks.core.docs import CYCLICAL_VALUES
from tasks.core.errors import LooplineError, ValidationGateError
from tasks.model.featurize import Featurizer
from tasks.serving.bulk import open_source
from tasks.serving.champion import Champion, MissingFeaturesError, require_features, score_frame
from tasks.serving.nightly import check_unseen


@pytest.fixture()
def champion() -> Champion:
    """A model trained on carrier, distance and visib (the network is never reached)."""
    frame = pd.DataFrame(
        {"carrier": ["UA", "AA", "UA"], "distance": [100.0, 200.0, 300.0], "visib": [1, 2, 3]}
    )
    featurizer = Featurizer.fit(frame, ["carrier"], ["distance", "visib"], min_count=1)
    return Champion("flights", "4", None, featurizer, 0.5, "run")


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_frame_with_the_models_columns_passes_whatever_else_it_holds(champion):
    require_features(champion, ["id", "visib", "distance", "carrier", "extra"], "rows")


def test_a_frame_lacking_a_models_column_fails_in_one_line(champion):
    frame = pd.DataFrame({"carrier": ["UA"], "distance": [1.0]})  # params dropped visib
    with pytest.raises(MissingFeaturesError) as error:
        score_frame(champion, frame, 10, where="data/incoming/2013-01-29.parquet")
    assert _one_line(error) == (
        "data/incoming/2013-01-29.parquet: lacks feature column(s) ['visib'] that flights v4 "
        "was trained on; add them to the input (nulls are allowed), or promote a version "
        "trained without them"
    )
    assert isinstance(error.value, LooplineError)  # the CLI's one line, exit code 1


def test_bulk_input_lacking_a_models_column_is_refused_before_any_output(champion, tmp_path):
    source = tmp_path / "rows.parquet"
    pd.DataFrame({"id": [1], "carrier": ["UA"]}).to_parquet(source, index=False)
    with pytest.raises(MissingFeaturesError) as error:
        open_source(source, champion)
    message = _one_line(error)
    assert message.startswith(f"{source}: lacks feature column(s) ['distance', 'visib']")
    assert "flights v4" in message


def test_bulk_reads_a_file_holding_the_models_columns(champion, tmp_path):
    source = tmp_path / "rows.parquet"
    pd.DataFrame(
        {"id": [1], "carrier": ["UA"], "distance": [1.0], "visib": [2.0], "month": [1]}
    ).to_parquet(source, index=False)
    assert open_source(source, champion).metadata.num_rows == 1


def test_the_unseen_values_guard_points_to_the_docs_on_cyclical_values():
    with pytest.raises(ValidationGateError) as error:
        check_unseen({"month": 90}, 100, 0.5, Path("data/incoming/2013-04-01.parquet"))
    message = _one_line(error)
    assert "month: 90 of 100 values never seen in training" in message
    assert message.endswith(f"belongs in features.numeric: {CYCLICAL_VALUES})")
