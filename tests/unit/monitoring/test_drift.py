"""Drift on real January rows with real Evidently: a feature with no values on one side and the
sampling policy for large windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.core.config import Params
from tasks.core.layout import EVENT_DATE
from tasks.monitoring.drift import SCORE, drift_sample, feature_drift


@pytest.fixture(scope="module")
def params(base_params_dict) -> Params:
    return Params.model_validate(base_params_dict)


@pytest.fixture(scope="module")
def halves(feature_slice) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference: the first days; current: the later ones; both with a score column."""
    rng = np.random.default_rng(0)
    frame = feature_slice.assign(**{SCORE: rng.random(len(feature_slice))})
    cut = sorted(frame[EVENT_DATE].unique())[len(frame[EVENT_DATE].unique()) // 2]
    return frame[frame[EVENT_DATE] < cut], frame[frame[EVENT_DATE] >= cut]


def test_a_feature_with_no_values_counts_as_drifted_instead_of_failing(params, halves):
    reference, current = halves
    _, before = feature_drift(params, reference, current)
    outage = current.assign(temp=np.nan, dewp=np.nan)  # the weather feed stopped

    _, after = feature_drift(params, reference, outage)

    n = len(params.dataset.features.names)
    assert after["columns"]["temp"] == {
        "score": None,
        "threshold": None,
        "method": "all values missing",
        "drifted": True,
    }
    assert after["columns"]["dewp"]["drifted"]
    others = [c for c in params.dataset.features.names if c not in ("temp", "dewp")]
    assert {c: after["columns"][c] for c in others} == {c: before["columns"][c] for c in others}
    drifted = sum(1 for c in others if before["columns"][c]["drifted"]) + 2
    assert after["drifted_columns"] == drifted
    assert after["drift_share"] == pytest.approx(drifted / n)


def test_windows_over_max_rows_are_sampled_with_the_seed(params, halves):
    _, current = halves
    cfg = params.drift.model_copy(update={"max_rows": 500})

    first, second = drift_sample(cfg, current), drift_sample(cfg, current)

    assert len(first) == 500
    assert first.index.equals(second.index)  # seeded: the same rows every time
    assert len(drift_sample(cfg, current.head(400))) == 400  # small windows are whole
