"""The gate's rules on hand-made figures, and the statistics they stand on."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from tasks.core.config import PromoteConfig
from tasks.core.metrics import (
    WARMUP_CALLS,
    classification_metrics,
    paired_auc_difference,
    paired_ece_difference,
    timed_in_turns,
)
from tasks.registry.gate import (
    INSUFFICIENT,
    PROMOTED,
    REJECTED,
    Difference,
    Holdout,
    Measured,
    gate_checks,
    verdict,
)

REPO = Path(__file__).resolve().parents[3]
CFG = PromoteConfig.model_validate(yaml.safe_load((REPO / "params.yaml").read_text())["promote"])
ENOUGH = Holdout(rows=14_000, positives=3_000)


def _measured(version="2", auc=0.70, ece=0.02, latency=5.0) -> Measured:
    return Measured(version, auc, ece, latency)


def _gate(candidate, champion=None, difference=None, holdout=ENOUGH, **kwargs):
    checks = gate_checks(
        CFG,
        validation_passed=kwargs.get("validation_passed", True),
        candidate=candidate,
        artifact_bytes=kwargs.get("artifact_bytes", 20_000),
        teacher_auc=kwargs.get("teacher_auc"),
        holdout=holdout,
        champion=champion,
        difference=difference,
        ece_difference=kwargs.get("ece_difference"),
    )
    return checks, verdict(checks), {c.name for c in checks if not c.passed}


def test_a_first_model_meets_the_absolute_floors():
    checks, kind, failed = _gate(_measured(auc=0.70, ece=0.02))
    assert kind == PROMOTED and not failed
    assert {c.name for c in checks} >= {"auc_floor", "calibration", "latency_p95"}
    _, kind, failed = _gate(_measured(auc=CFG.min_auc - 0.01, ece=CFG.max_ece + 0.01))
    assert kind == REJECTED and failed == {"auc_floor", "calibration"}


def test_a_later_candidate_is_judged_against_the_champion_not_the_floors():
    """A hard season: both models score below the first model's floor on these days; the
    candidate is clearly better than the champion, so it serves."""
    low = CFG.min_auc - 0.05
    champion = _measured("1", auc=low - 0.02)
    difference = Difference(0.02, 0.008, 0.032)
    checks, kind, failed = _gate(_measured(auc=low), champion, difference)
    assert kind == PROMOTED, failed
    assert "auc_floor" not in {c.name for c in checks}
    holdout_auc = next(c for c in checks if c.name == "holdout_auc")
    assert (holdout_auc.value, holdout_auc.threshold) == (low, low - 0.02)  # champion's beside


def test_a_worse_candidate_is_rejected_on_the_interval():
    difference = Difference(-0.02, -0.03, -0.01)
    _, kind, failed = _gate(_measured(auc=0.68), _measured("1", auc=0.70), difference)
    assert kind == REJECTED and failed == {"auc_vs_champion"}
    # far worse, with a wide interval: still decided, not "insufficient evidence"
    wide = Difference(-0.2, -0.26, -0.14)
    _, kind, failed = _gate(_measured(auc=0.5), _measured("1", auc=0.70), wide)
    assert kind == REJECTED and failed == {"auc_vs_champion"}


def test_a_clearly_better_candidate_is_decided_however_wide_the_interval():
    """Seen on a 515-row holdout of a small data set: +0.119 [+0.079, +0.158] was kept out as
    "insufficient evidence" for its width; an interval that does not reach -max_auc_drop
    decides, only one that straddles it is a coin flip."""
    wide = Difference(0.119, 0.079, 0.158)
    _, kind, failed = _gate(_measured(auc=0.72), _measured("1", auc=0.60), wide)
    assert kind == PROMOTED and not failed
    straddling = Difference(0.03, -0.02, 0.08)
    _, kind, failed = _gate(_measured(auc=0.63), _measured("1", auc=0.60), straddling)
    assert kind == INSUFFICIENT and failed == {"evidence"}


@pytest.mark.parametrize(
    ("holdout", "difference", "why"),
    [
        (Holdout(rows=330, positives=80), Difference(0.004, -0.001, 0.009), "min_rows"),
        (Holdout(rows=5_000, positives=20), Difference(0.004, -0.001, 0.009), "min_class_rows"),
        (ENOUGH, Difference(0.004, -0.06, 0.07), "max_interval_width"),
    ],
)
def test_a_holdout_that_cannot_tell_keeps_the_champion(holdout, difference, why):
    """A few thousandths on a few hundred rows is a coin flip: "insufficient evidence"."""
    checks, kind, failed = _gate(
        _measured(auc=0.704), _measured("1", auc=0.700), difference, holdout
    )
    assert kind == INSUFFICIENT and failed == {"evidence"}
    evidence = next(c for c in checks if c.name == "evidence")
    assert evidence.detail.startswith("insufficient evidence, champion kept") and why in (
        evidence.detail
    )
    assert "auc_vs_champion" not in {c.name for c in checks}  # no verdict on a coin flip


def test_evidence_and_another_failure_is_a_rejection():
    _, kind, failed = _gate(
        _measured(latency=100.0),
        _measured("1", latency=5.0),
        Difference(0.0, -0.1, 0.1),
        Holdout(rows=100, positives=30),
    )
    assert kind == REJECTED and failed == {"evidence", "latency_vs_champion"}


def test_latency_is_a_ratio_to_the_champion_so_load_does_not_change_the_verdict():
    """The same two models on an idle and on a busy machine: every figure doubles, the ratio
    and so the verdict stay; the first model under load still fits the ceiling."""
    difference = Difference(0.01, 0.002, 0.018)
    idle = _gate(_measured(latency=6.0), _measured("1", latency=5.0), difference)
    busy = _gate(_measured(latency=34.0), _measured("1", latency=28.0), difference)
    assert idle[1] == busy[1] == PROMOTED
    slower = _gate(_measured(latency=9.0), _measured("1", latency=5.0), difference)
    assert slower[2] == {"latency_vs_champion"}
    assert _gate(_measured(latency=34.0))[1] == PROMOTED  # first model, busy machine


def test_calibration_is_relative_to_the_champion_later():
    difference = Difference(0.01, 0.002, 0.018)
    champion = _measured("1", ece=0.09)  # a season whose base rate moved
    _, kind, _ = _gate(_measured(ece=0.095), champion, difference)
    assert kind == PROMOTED  # within the champion's ECE + max_ece_increase
    _, kind, failed = _gate(_measured(ece=0.09 + CFG.max_ece_increase + 0.01), champion, difference)
    assert kind == REJECTED and failed == {"calibration"}


def test_a_worse_calibration_the_days_cannot_tell_apart_is_not_held_against_a_candidate():
    difference = Difference(0.01, 0.002, 0.018)
    champion = _measured("1", ece=0.022)  # a lucky fortnight for the champion
    noisy = Difference(0.040, -0.010, 0.090)  # worse by .04, but within what the days move
    _, kind, _ = _gate(_measured(ece=0.062), champion, difference, ece_difference=noisy)
    assert kind == PROMOTED
    shown = Difference(0.245, 0.200, 0.290)  # a validation week's base rate chased: clear
    _, kind, failed = _gate(_measured(ece=0.267), champion, difference, ece_difference=shown)
    assert kind == REJECTED and failed == {"calibration"}


def _days_with_rates(rates: list[float], rows_per_day: int, seed: int):
    """Holdout days of different base rates; a model that knows each row's risk, and the day."""
    rng = np.random.default_rng(seed)
    day = np.repeat(np.arange(len(rates)), rows_per_day)
    risk = rng.beta(2, 6, day.size)
    tilt = np.asarray(rates)[day] - 0.25  # the day's weather, on every row of it
    y = (rng.random(day.size) < np.clip(risk + tilt, 0, 1)).astype(int)
    return y, np.clip(risk + tilt, 0, 1), risk, day


def test_the_ece_interval_resamples_days_so_a_shared_base_rate_widens_it():
    rates = [0.15, 0.40, 0.20, 0.35, 0.10, 0.30, 0.25] * 2
    y, knows_days, blind, day = _days_with_rates(rates, 400, seed=0)
    result = paired_ece_difference(y, blind, knows_days, day, 10, 500, 0.95, seed=1)
    truth = (
        classification_metrics(y, blind, 0.5, 10)["ece"]
        - classification_metrics(y, knows_days, 0.5, 10)["ece"]
    )
    assert result["difference"] == pytest.approx(truth)
    assert result["low"] < truth < result["high"]
    assert result["groups"] == 14
    # every row its own group (what a row bootstrap would say): far narrower, overconfident
    rows = paired_ece_difference(y, blind, knows_days, np.arange(y.size), 10, 500, 0.95, seed=1)
    assert rows["high"] - rows["low"] < 0.5 * (result["high"] - result["low"])
    # a consistent offset on every day is told apart from noise
    shifted = np.clip(knows_days + 0.2, 0, 1)
    clear = paired_ece_difference(y, shifted, knows_days, day, 10, 500, 0.95, seed=1)
    assert clear["low"] > 0.1
    assert clear == paired_ece_difference(y, shifted, knows_days, day, 10, 500, 0.95, seed=1)


def test_paired_bootstrap_interval_covers_a_known_difference():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    strong = expit(y + rng.normal(0, 0.8, y.size))
    weak = expit(y + rng.normal(0, 1.6, y.size))
    truth = roc_auc_score(y, strong) - roc_auc_score(y, weak)
    result = paired_auc_difference(y, strong, weak, resamples=400, confidence=0.95, seed=1)
    assert result["difference"] == pytest.approx(truth)
    assert result["low"] < truth < result["high"]
    assert result["low"] > 0  # clearly better: the interval excludes zero
    again = paired_auc_difference(y, strong, weak, resamples=400, confidence=0.95, seed=1)
    assert again == result  # seeded: the same verdict every time


def test_identical_models_differ_by_exactly_nothing():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 500)
    scores = rng.random(500)
    result = paired_auc_difference(y, scores, scores, resamples=200, confidence=0.9, seed=0)
    assert (result["difference"], result["low"], result["high"]) == (0.0, 0.0, 0.0)


def test_small_samples_give_wide_intervals():
    rng = np.random.default_rng(3)
    widths = {}
    for rows in (300, 30_000):
        y = rng.integers(0, 2, rows)
        a, b = expit(y + rng.normal(0, 1.0, rows)), expit(y + rng.normal(0, 1.05, rows))
        r = paired_auc_difference(y, a, b, resamples=300, confidence=0.95, seed=0)
        widths[rows] = r["high"] - r["low"]
    assert widths[300] > 5 * widths[30_000]


def test_timed_in_turns_alternates_call_by_call_on_the_same_rows():
    calls = []

    def model(name, ms):
        def predict(start, stop):
            calls.append((name, start, stop))
            time.sleep(ms / 1000)

        return predict

    timings = timed_in_turns({"a": model("a", 1), "b": model("b", 6)}, 10, 4, repeats=3, rounds=2)
    assert 1 <= timings.best_round_p95_ms("a") < timings.best_round_p95_ms("b")
    assert 3 < timings.ratio("b", "a", 0.95).median < 7
    timed = calls[2 * WARMUP_CALLS :]
    assert len(timed) == 2 * 3 * 2
    assert [n for n, _, _ in timed[:6]] == ["a", "b", "b", "a", "a", "b"]  # turns alternate
    # every call scores the same number of rows, both models the same slice in a turn
    assert {stop - start for _, start, stop in timed} == {4}
    assert timed[0][1:] == timed[1][1:] and timed[2][1:] == timed[3][1:]


def test_the_turn_ratio_ignores_what_disturbs_both_models_alike():
    from tasks.core.metrics import TurnTimings

    base = np.full(20, 0.002)
    disturbed = base.copy()
    disturbed[[3, 11, 17]] = 0.2  # preempted turns slow both models of the turn
    timings = TurnTimings({"a": disturbed * 1.1, "b": disturbed}, rounds=2)
    assert timings.ratio("a", "b", 0.95).median == pytest.approx(1.1)
    # while the ratio of the p95s is whatever the preemptions made it
    assert timings.best_round_p95_ms("a") > 50 * 2.0


def test_a_few_noisy_turns_are_no_evidence_of_a_slower_candidate():
    """Two copies of one model over 15 turns at load 8 (figures seen in a test run): the median
    ratio read 1.98 once; its interval covers 1, so the gate does not reject on it. A candidate
    slower in every turn is rejected however few the turns."""
    from tasks.core.metrics import RatioInterval

    noisy = np.array(
        [2.01, 1.51, 0.76, 0.99, 1.01, 1.0, 1.3, 2.2, 2.4, 2.1, 1.99, 1.98, 3.6, 14.4, 2.5]
    )
    ratio = RatioInterval.of(noisy, 0.95)
    assert ratio.median == pytest.approx(1.99) and ratio.low < 1.5 < ratio.high
    difference = Difference(0.01, 0.002, 0.018)
    champion = _measured("1", latency=5.0)
    same = _gate(Measured("2", 0.7, 0.02, 5.2, ratio), champion, difference)
    assert same[1] == PROMOTED
    slower = RatioInterval.of(np.linspace(1.8, 2.6, 15), 0.95)
    assert _gate(Measured("2", 0.7, 0.02, 9.0, slower), champion, difference)[2] == {
        "latency_vs_champion"
    }


@pytest.mark.parametrize("turns", [15, 150])
def test_the_median_interval_covers_the_median_as_often_as_it_says(turns):
    """Order statistics of the binomial: over 2,000 samples of skewed noise around a true
    median of 1, the 95% interval misses it at most ~5% of the time."""
    from tasks.core.metrics import RatioInterval

    rng = np.random.default_rng(0)
    samples = rng.lognormal(0.0, 0.8, size=(2000, turns))
    intervals = [RatioInterval.of(sample, 0.95) for sample in samples]
    misses = [not (r.low <= 1.0 <= r.high) for r in intervals]
    assert np.mean(misses) <= 0.06
