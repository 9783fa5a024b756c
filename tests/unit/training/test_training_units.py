"""The pure parts of training on tiny frames: featurizer, network save/load, the loop, splits."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from tasks.core.config import DateWindow, Schedule
from tasks.data.split import TrainingDataError, split_frame, split_windows
from tasks.model import featurize
from tasks.model.featurize import ArrowEncoder, Featurizer
from tasks.model.nets import (
    NetConfig,
    TabularNet,
    artifact_bytes,
    load_model,
    parameter_count,
    quantize_int8,
    save_model,
)
from tasks.model.predict import predict_proba
from tasks.training.loop import TrainingData, fit, seed_everything

SCHEDULE = Schedule(batch_size=64, max_epochs=6, patience=6, learning_rate=0.01, weight_decay=0.0)


def _frame(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    """Labels depend on a numeric and a categorical feature, so there is something to learn."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    colour = rng.choice(["red", "green", "blue"], size=rows)
    logit = 2.0 * x + np.where(colour == "red", 1.5, -0.5)
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    return pd.DataFrame({"x": x, "colour": colour, "y": y})


def _data(featurizer: Featurizer, frame: pd.DataFrame) -> TrainingData:
    return TrainingData.from_encoded(featurizer.transform(frame), frame["y"].to_numpy())


def _train(tmp_path, frame, *, on_epoch=None, key="k", schedule=SCHEDULE, hidden=(16,)):
    featurizer = Featurizer.fit(frame, ["colour"], ["x"], min_count=1)
    seed_everything(7, 1)
    model = TabularNet(NetConfig.for_featurizer(featurizer, list(hidden), 4, 0.1))
    train, val = _data(featurizer, frame.iloc[:500]), _data(featurizer, frame.iloc[500:])
    result = fit(
        model,
        train,
        val,
        schedule,
        seed=7,
        checkpoint_dir=tmp_path / "ckpt",
        key=key,
        on_epoch=on_epoch,
    )
    return result, featurizer


def test_featurizer_oov_nulls_and_indicators():
    train = pd.DataFrame({"c": ["a", "a", "b", "rare", None], "n": [1.0, 2.0, np.nan, 4.0, 5.0]})
    featurizer = Featurizer.fit(train, ["c"], ["n"], min_count=2)
    assert featurizer.vocabularies == {"c": ["a"]}  # "b" and "rare" are below min_count
    assert featurizer.missing_indicators == ["n"]
    later = pd.DataFrame({"c": ["a", "unseen", None], "n": [np.nan, 3.0, 1.0]})
    encoded = featurizer.transform(later)
    assert encoded.categorical[:, 0].tolist() == [1, 0, 0]  # unseen and null → OOV bucket 0
    assert encoded.oov_counts == {"c": 1}  # the null is missing, not out of vocabulary
    assert encoded.numeric[:, 1].tolist() == [1.0, 0.0, 0.0]  # missing indicator
    median_scaled = (featurizer.medians["n"] - featurizer.means["n"]) / featurizer.stds["n"]
    assert encoded.numeric[0, 0] == pytest.approx(median_scaled)
    assert Featurizer.from_json(featurizer.to_json()) == featurizer


def test_a_few_rows_are_encoded_by_lookup_exactly_as_through_arrow(monkeypatch):
    rng = np.random.default_rng(3)
    train = pd.DataFrame({"c": rng.choice(list("abcdef"), 400), "n": rng.normal(size=400).round(2)})
    train.loc[::7, "n"] = np.nan
    featurizer = Featurizer.fit(train, ["c"], ["n"], min_count=5)
    values = [*rng.choice([*"abcdef", "unseen", None], 300)]  # nulls, unseen, repeats
    numbers = [*rng.choice([0.5, -1.25, np.nan, 3.0], 300)]
    batches = [
        pa.record_batch({"c": pa.array(values[:k], pa.string()), "n": pa.array(numbers[:k])})
        for k in (1, 7, 300)
    ]
    small = [ArrowEncoder(featurizer)(b) for b in batches]  # each under SMALL_BATCH_ROWS
    monkeypatch.setattr(featurize, "SMALL_BATCH_ROWS", 0)  # every batch through Arrow
    for got, batch in zip(small, batches, strict=True):
        expected = ArrowEncoder(featurizer)(batch)
        np.testing.assert_array_equal(got.categorical, expected.categorical)
        np.testing.assert_array_equal(got.numeric, expected.numeric)
        assert got.oov_counts == expected.oov_counts
    assert small[-1].oov_counts["c"] == values.count("unseen") > 0  # nulls are not unseen
    frame = pd.DataFrame({"c": values, "n": numbers})
    np.testing.assert_array_equal(featurizer.transform(frame).numeric, small[-1].numeric)


def test_loss_goes_down_on_tiny_data(tmp_path):
    result, _ = _train(tmp_path, _frame())
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0] * 0.9
    assert result.history[-1]["val_log_loss"] < np.log(2)  # better than a coin


def test_same_seed_same_weights(tmp_path):
    first, _ = _train(tmp_path / "a", _frame())
    second, _ = _train(tmp_path / "b", _frame())
    for (name, a), (_, b) in zip(
        first.model.state_dict().items(), second.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_resume_after_a_crash_matches_uninterrupted(tmp_path):
    uninterrupted, _ = _train(tmp_path / "full", _frame())

    def crash_at_epoch_4(record: dict) -> None:
        if record["epoch"] == 4:
            raise KeyboardInterrupt("simulated kill")  # after epoch 3's checkpoint was written

    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "crashed", _frame(), on_epoch=crash_at_epoch_4)
    assert (tmp_path / "crashed" / "ckpt" / "checkpoint.pt").exists()
    resumed, _ = _train(tmp_path / "crashed", _frame())
    assert resumed.resumed_from_epoch == 3
    assert [h["epoch"] for h in resumed.history] == list(range(1, SCHEDULE.max_epochs + 1))
    for a, b in zip(
        uninterrupted.model.state_dict().values(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    assert not (tmp_path / "crashed" / "ckpt" / "checkpoint.pt").exists()


def test_checkpoint_of_another_run_is_not_resumed(tmp_path):
    def crash(record: dict) -> None:
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path, _frame(), on_epoch=crash, key="run-a")
    result, _ = _train(tmp_path, _frame(), key="run-b")
    assert result.resumed_from_epoch is None


def test_early_stopping_keeps_best_epoch(tmp_path):
    schedule = SCHEDULE.model_copy(update={"max_epochs": 40, "patience": 2, "learning_rate": 0.05})
    result, _ = _train(tmp_path, _frame(), schedule=schedule)
    best = min(result.history, key=lambda h: h["val_log_loss"])
    assert result.best_epoch == best["epoch"]
    assert len(result.history) <= result.best_epoch + schedule.patience


def test_saved_models_round_trip_fp32_and_int8(tmp_path):
    result, featurizer = _train(tmp_path, _frame(), hidden=(128, 64))
    frame = _frame(seed=1)
    save_model(result.model, featurizer, tmp_path / "fp32")
    quantized = quantize_int8(result.model)
    save_model(quantized, featurizer, tmp_path / "int8")
    fp32, f1 = load_model(tmp_path / "fp32")
    int8, f2 = load_model(tmp_path / "int8")
    expected = predict_proba(result.model, featurizer, frame)
    np.testing.assert_allclose(predict_proba(fp32, f1, frame), expected, rtol=0, atol=1e-6)
    int8_scores = predict_proba(int8, f2, frame)
    np.testing.assert_allclose(int8_scores, predict_proba(quantized, featurizer, frame), atol=1e-6)
    assert np.abs(int8_scores - expected).mean() < 0.01  # quantization error stays small
    assert artifact_bytes(tmp_path / "int8") < artifact_bytes(tmp_path / "fp32")
    assert parameter_count(int8) == parameter_count(fp32) == parameter_count(result.model)
    assert not list((tmp_path / "fp32").glob("*.pt")) and not list(
        (tmp_path / "fp32").glob("*.pkl")
    )


def _dated(days: int, label=lambda i: i % 2) -> pd.DataFrame:
    dates = [dt.date(2013, 1, 1) + dt.timedelta(days=d) for d in range(days) for _ in range(4)]
    return pd.DataFrame(
        {"event_date": [str(d) for d in dates], "y": [label(i) for i in range(len(dates))]}
    )


def test_split_is_by_time_without_overlap():
    windows = split_windows(DateWindow(start="2013-01-01", end="2013-01-10"), 2, 3)
    split = split_frame(_dated(10), windows, "y")
    assert split.train["event_date"].max() < split.validation["event_date"].min()
    assert split.validation["event_date"].max() < split.test["event_date"].min()
    assert split.test["event_date"].max() == "2013-01-10"
    assert (split.test["event_date"].nunique(), split.validation["event_date"].nunique()) == (3, 2)


def test_window_too_short_is_a_clear_error():
    with pytest.raises(TrainingDataError, match="too short for 7 validation \\+ 14 test days"):
        split_windows(DateWindow(start="2013-01-01", end="2013-01-15"), 7, 14)


def test_single_class_window_is_refused():
    windows = split_windows(DateWindow(start="2013-01-01", end="2013-01-10"), 2, 2)
    with pytest.raises(TrainingDataError, match=r"holds one class only \(y=0\)"):
        split_frame(_dated(10, label=lambda i: 0), windows, "y")


def test_batch_rows_shrink_so_a_small_window_gets_enough_steps():
    schedule = Schedule(
        batch_size=1024, max_epochs=1, patience=1, learning_rate=0.01, weight_decay=0.0
    )
    assert schedule.batch_rows(200_000) == 1024  # a large window: batch_size as set
    assert schedule.batch_rows(20_000) == 400  # 50 steps an epoch
    assert schedule.batch_rows(500) == 32  # never below MIN_BATCH_ROWS


def test_a_small_window_with_a_large_batch_size_still_learns(tmp_path):
    """500 rows with batch_size 1024: one step an epoch would leave the net near a coin."""
    big = SCHEDULE.model_copy(update={"batch_size": 1024})
    one_step = big.model_copy(update={"min_steps_per_epoch": 1})
    learnt, _ = _train(tmp_path / "a", _frame(), schedule=big)
    starved, _ = _train(tmp_path / "b", _frame(), schedule=one_step)
    assert learnt.history[-1]["val_log_loss"] < 0.55
    assert starved.history[-1]["val_log_loss"] > 0.6
