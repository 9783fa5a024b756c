"""The ensemble teacher's pure parts: time folds, the blend weight, the saved scores, recency
weights and the weighted losses."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import torch

from tasks.core.columns import EVENT_DATE
from tasks.core.errors import LooplineError
from tasks.data.split import recency_weights
from tasks.training.ensemble import BaselineScores, blend, fit_blend_weight, time_folds
from tasks.training.loop import TrainingData, distillation_loss, hard_label_loss


def test_time_folds_never_split_a_day_and_cover_every_row():
    dates = np.array(["d1", "d1", "d2", "d3", "d3", "d3", "d4", "d5"])
    folds = time_folds(dates, 2)
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(dates)))
    days = [set(dates[f]) for f in folds]
    assert days[0].isdisjoint(days[1])
    assert max(dates[folds[0]]) < min(dates[folds[1]])  # consecutive runs, oldest first


def test_time_folds_with_fewer_days_than_folds():
    assert len(time_folds(np.array(["a", "a", "b"]), 4)) == 2


def test_blend_weight_picks_the_better_teacher():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 2000).astype(float)
    informed = np.clip(0.5 + 0.35 * (labels - 0.5) + rng.normal(0, 0.1, 2000), 0.01, 0.99)
    noise = rng.uniform(0.01, 0.99, 2000)
    assert fit_blend_weight(labels, informed, noise) >= 0.8
    assert fit_blend_weight(labels, noise, informed) <= 0.2


def test_blend_weight_ties_keep_the_network():
    labels = np.array([0.0, 1.0, 0.0, 1.0])
    same = np.array([0.2, 0.8, 0.3, 0.7])
    assert fit_blend_weight(labels, same, same) == 1.0
    np.testing.assert_allclose(blend(0.3, same, same), same)


def test_baseline_scores_round_trip_and_refuse_another_window(tmp_path):
    scores = BaselineScores(np.array([0.1, 0.2, 0.3]), np.array([0.4]), np.array([0.5, 0.6]))
    path = scores.save(tmp_path / "baseline" / "scores.npz")
    loaded = BaselineScores.load(path, {"train": 3, "validation": 1, "test": 2})
    np.testing.assert_array_equal(loaded.train_out_of_fold, scores.train_out_of_fold)
    with pytest.raises(LooplineError, match="run `loopline stage evaluate` again"):
        BaselineScores.load(path, {"train": 4, "validation": 1, "test": 2})
    with pytest.raises(LooplineError, match="no baseline scores"):
        BaselineScores.load(tmp_path / "missing.npz", {"train": 3, "validation": 1, "test": 2})


def test_recency_weights_halve_every_half_life():
    frame = pd.DataFrame({EVENT_DATE: ["2013-03-31", "2013-03-01", "2013-01-30"]})
    end = dt.date(2013, 3, 31)
    np.testing.assert_allclose(recency_weights(frame, end, 30), [1.0, 0.5, 0.25])
    assert recency_weights(frame, end, None) is None


def _batch(weights=None):
    return TrainingData(
        torch.zeros(3, 1, dtype=torch.long),
        torch.zeros(3, 1),
        torch.tensor([1.0, 0.0, 1.0]),
        torch.tensor([2.0, -2.0, 0.0]),
        None if weights is None else torch.tensor(weights),
    )


def test_weighted_losses_follow_the_weights():
    logits = torch.tensor([3.0, 3.0, -3.0])  # right, wrong, wrong
    plain = hard_label_loss(logits, _batch())
    assert torch.isclose(hard_label_loss(logits, _batch([1.0, 1.0, 1.0])), plain)
    # All the weight on the row it gets right: a much smaller loss.
    assert hard_label_loss(logits, _batch([1.0, 0.0, 0.0])) < plain / 5
    distill = distillation_loss(3.0, 0.9)
    assert torch.isclose(distill(logits, _batch([2.0, 2.0, 2.0])), distill(logits, _batch()))
    assert distill(logits, _batch([1.0, 0.0, 0.0])) < distill(logits, _batch())
