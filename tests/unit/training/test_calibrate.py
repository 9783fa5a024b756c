"""Calibration folded into the output layer: the base rate moves, the probabilities follow."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from tasks.core.metrics import calibration_error, calibration_table
from tasks.training.calibrate import Calibration, fit_calibration, fold_into_output


def _shifted_days(rows: int, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a model that learnt a base rate of .23, on days whose rate is `rate`."""
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < rate).astype(int)
    signal = rng.normal(0, 1, rows) + 1.2 * y
    return signal - 1.6, y  # the model's logit: right ranking, the winter's offset


def _ece(y: np.ndarray, logits: np.ndarray) -> float:
    return calibration_error(calibration_table(y, 1 / (1 + np.exp(-logits)), 10))


@pytest.mark.parametrize("method", ["platt", "temperature"])
def test_a_moved_base_rate_is_corrected_and_the_ranking_kept(method):
    validation_logits, validation_y = _shifted_days(4000, 0.13, seed=0)  # September
    test_logits, test_y = _shifted_days(4000, 0.13, seed=1)
    calibration = fit_calibration(validation_logits, validation_y, method)
    calibrated = calibration.scale * test_logits + calibration.shift
    if method == "platt":
        assert _ece(test_y, test_logits) > 0.05  # uncalibrated: fails the gate's bound
        assert _ece(test_y, calibrated) < 0.02
    else:
        assert calibration.shift == 0.0
    assert roc_auc_score(test_y, calibrated) == pytest.approx(roc_auc_score(test_y, test_logits))


def test_folding_into_the_output_layer_equals_the_map():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    x = torch.randn(32, 4)
    with torch.no_grad():
        before = net(x)
        fold_into_output(net, Calibration("platt", 0.7, -0.4))
        after = net(x)
    torch.testing.assert_close(after, 0.7 * before - 0.4)


def test_none_and_single_class_days_keep_the_identity():
    logits, y = _shifted_days(100, 0.2, seed=0)
    assert fit_calibration(logits, y, "none") == Calibration("none")
    assert fit_calibration(logits, np.zeros_like(y), "platt") == Calibration("platt")


def test_a_map_that_would_reverse_the_ranking_is_refused():
    logits, y = _shifted_days(2000, 0.3, seed=0)
    assert fit_calibration(-logits, y, "platt") == Calibration("platt")  # scale <= 0: identity


def test_the_level_comes_from_the_longer_stretch_and_the_scale_from_the_validation_days():
    """A stormy validation week (rate .40) in a month at .20: the shift follows the month."""
    week_logits, week_y = _shifted_days(3000, 0.40, seed=0)
    month_logits, month_y = _shifted_days(12000, 0.20, seed=1)
    test_logits, test_y = _shifted_days(6000, 0.20, seed=2)
    on_the_week = fit_calibration(week_logits, week_y, "platt")
    levelled = fit_calibration(week_logits, week_y, "platt", level=(month_logits, month_y))
    assert levelled.scale == on_the_week.scale
    assert levelled.shift < on_the_week.shift
    before = _ece(test_y, on_the_week.scale * test_logits + on_the_week.shift)
    after = _ece(test_y, levelled.scale * test_logits + levelled.shift)
    assert before > 0.1
    assert after < 0.03
