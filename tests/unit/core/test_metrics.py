"""Evaluation numbers follow their definitions, degrade to NaN instead of raising, and the plots
land as complete PNG / JSON files."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest

from tasks.core.metrics import (
    agreement,
    calibration_table,
    classification_metrics,
    latency_profile,
)
from tasks.training.plots import evaluation_plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def synthetic(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated by construction: each label is drawn with probability equal to its score."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0, 1, n)
    return (rng.uniform(0, 1, n) < scores).astype(int), scores


def test_perfect_scores():
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    m = classification_metrics(y, y.astype(float), threshold=0.5, calibration_bins=10)
    assert m["roc_auc"] == 1.0
    assert m["pr_auc"] == 1.0
    assert m["ece"] == pytest.approx(0.0, abs=1e-12)
    assert m["brier"] == pytest.approx(0.0, abs=1e-12)
    assert m["log_loss"] < 1e-5  # finite thanks to clipping, and tiny
    assert m["accuracy"] == m["precision"] == m["recall"] == m["f1"] == 1.0
    assert m["positive_rate"] == 0.5
    assert m["rows"] == 8
    assert all(type(v) is float for v in m.values())


def test_ece_by_hand_on_two_bins():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.9])
    # Definition: sum over bins of (count / n) * |mean score - observed rate|.
    # Bin [0, .5): scores .1 .2 .3, labels 0 0 1. Bin [.5, 1]: score .9, label 1.
    expected = (3 * abs((0.1 + 0.2 + 0.3) / 3 - 1 / 3) + 1 * abs(0.9 - 1.0)) / 4
    m = classification_metrics(y, s, threshold=0.5, calibration_bins=2)
    assert m["ece"] == pytest.approx(expected)

    table = calibration_table(y, s, bins=2)
    assert [(r["bin_lower"], r["bin_upper"], r["count"]) for r in table] == [
        (0.0, 0.5, 3),
        (0.5, 1.0, 1),
    ]
    assert table[0]["mean_score"] == pytest.approx(0.2)
    assert table[0]["observed_rate"] == pytest.approx(1 / 3)


def test_calibration_table_omits_empty_bins_and_keeps_score_one():
    table = calibration_table([0, 1, 1], [0.05, 0.95, 1.0], bins=10)
    assert [(r["bin_lower"], r["count"]) for r in table] == [(0.0, 1), (0.9, 2)]
    assert sum(r["count"] for r in table) == 3


def test_calibrated_scores_have_small_ece_and_miscalibrated_large():
    y, s = synthetic()
    calibrated = classification_metrics(y, s, threshold=0.5, calibration_bins=10)
    squashed = classification_metrics(y, s**3, threshold=0.5, calibration_bins=10)
    assert calibrated["ece"] < 0.05
    assert squashed["ece"] > 0.15
    assert squashed["roc_auc"] == pytest.approx(calibrated["roc_auc"])  # ranking unchanged


@pytest.mark.parametrize("label", [0, 1])
def test_single_class_gives_nan_auc_without_raising(label):
    y = np.full(6, label)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(y, np.full(6, 0.5), threshold=0.5, calibration_bins=10)
    assert math.isnan(m["roc_auc"])
    assert math.isnan(m["pr_auc"])
    assert m["log_loss"] == pytest.approx(math.log(2))
    assert m["brier"] == pytest.approx(0.25)
    assert m["positive_rate"] == label


def test_constant_scores_rank_no_better_than_chance():
    m = classification_metrics([0, 1, 0, 1], [0.3] * 4, threshold=0.5, calibration_bins=5)
    assert m["roc_auc"] == 0.5
    assert m["recall"] == 0.0
    assert m["precision"] == 0.0  # no predicted positives


def test_threshold_metrics_follow_their_definitions():
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.4, 0.1])
    m = classification_metrics(y, s, threshold=0.5, calibration_bins=10)
    # predicted positive: .9 (tp), .8 (fp); missed positive .4 (fn); .1 is a tn
    assert m["precision"] == 0.5
    assert m["recall"] == 0.5
    assert m["f1"] == 0.5
    assert m["accuracy"] == 0.5
    at_score = classification_metrics(y, s, threshold=0.8, calibration_bins=10)
    assert at_score["precision"] == 0.5  # score >= threshold counts as positive


def test_raising_threshold_trades_recall_for_precision():
    y, s = synthetic()
    low = classification_metrics(y, s, threshold=0.3, calibration_bins=10)
    high = classification_metrics(y, s, threshold=0.8, calibration_bins=10)
    assert high["precision"] > low["precision"]
    assert high["recall"] < low["recall"]


def test_bad_inputs_fail_with_a_clear_message():
    with pytest.raises(ValueError, match="2 values but scores has 3"):
        classification_metrics([0, 1], [0.1, 0.2, 0.3], 0.5, 10)
    with pytest.raises(ValueError, match="only 0 and 1"):
        classification_metrics([0, 2], [0.1, 0.2], 0.5, 10)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        calibration_table([0, 1], [0.1, 1.5], 10)


def test_agreement_identical_and_inverted():
    _, a = synthetic(500)
    a = a[a != 0.5]
    same = agreement(a, a.copy(), threshold=0.5)
    assert same == {"agreement": 1.0, "score_correlation": pytest.approx(1.0), "mean_abs_diff": 0}
    inverted = agreement(a, 1 - a, threshold=0.5)
    assert inverted["agreement"] == 0.0
    assert inverted["score_correlation"] == pytest.approx(-1.0)
    assert inverted["mean_abs_diff"] == pytest.approx(np.mean(np.abs(2 * a - 1)))


def test_agreement_constant_scores_have_nan_correlation():
    result = agreement([0.2, 0.2, 0.2], [0.1, 0.6, 0.9], threshold=0.5)
    assert math.isnan(result["score_correlation"])
    assert result["agreement"] == pytest.approx(1 / 3)


def test_latency_profile_calls_consecutive_in_range_batches():
    calls: list[tuple[int, int]] = []

    def predict(start: int, stop: int) -> None:
        calls.append((start, stop))
        sum(range(1000 * (len(calls) % 4)))  # vary the work a little

    result = latency_profile(predict, rows=10, batch_size=4, repeats=7)
    assert len(calls) == 3 + 7  # warm-up calls are made but not timed
    assert all(0 <= start < stop <= 10 and stop - start == 4 for start, stop in calls)
    assert calls[0][0] == 0
    for (_, prev_stop), (start, _) in itertools.pairwise(calls):
        assert start in (prev_stop, 0)  # next slice, or wrap to the first row
    assert {start for start, _ in calls} == {0, 4}
    assert result["latency_ms_p50"] <= result["latency_ms_p95"] <= result["latency_ms_p99"]
    assert result["latency_ms_p50"] >= 0
    assert result["rows_per_s"] > 0
    assert result["batch_size"] == 4


def test_latency_profile_batch_larger_than_rows_scores_all_rows():
    calls: list[tuple[int, int]] = []
    result = latency_profile(lambda a, b: calls.append((a, b)), rows=3, batch_size=8, repeats=2)
    assert calls == [(0, 3)] * 5
    assert result["batch_size"] == 3


def curves() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    y, s = synthetic(3000, seed=1)
    noisy = np.clip(s + np.random.default_rng(2).normal(0, 0.25, s.size), 0, 1)
    return {"teacher": (y, s), "baseline": (y, noisy)}


def test_evaluation_plots_write_four_pngs_atomically(tmp_path):
    paths = evaluation_plots(curves(), tmp_path, calibration_bins=10)
    names = {"roc.png", "pr.png", "calibration.png", "score_hist.png"}
    assert {p.name for p in paths.values()} == names
    assert {p.name for p in tmp_path.iterdir()} == names  # no temp files left behind
    for path in paths.values():
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC)
        assert data.rstrip().endswith(b"IEND\xaeB`\x82")  # complete, not truncated
        assert len(data) > 5000


def test_evaluation_plots_tolerate_a_single_class_model(tmp_path):
    data = {**curves(), "tiny": (np.zeros(5, dtype=int), np.linspace(0.1, 0.5, 5))}
    paths = evaluation_plots(data, tmp_path, calibration_bins=10)
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in paths.values())


def test_importing_metrics_and_plots_stays_cheap():
    code = (
        "import sys, tasks.core.metrics, tasks.training.plots; "
        "print(sorted(m for m in ('sklearn', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
