"""Warm starts on tiny frames and nets: the champion's weights carried over to a retrain's
featurizer (vocabulary growth, new standardisation, a new missing indicator), and the
fallback to scratch when the two cannot be matched up."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from tasks.core.config import FineTune, NetShape, Params, Schedule
from tasks.model.featurize import Featurizer
from tasks.model.nets import quantize_int8
from tasks.training.loop import seed_everything
from tasks.training.warm import Incompatible, Start, scratch_net, start, transfer

SHAPE = NetShape(hidden=[8, 4], max_embedding_dim=3, dropout=0.0)


def _frame(colours: list[str], rows: int, shift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "colour": rng.choice(colours, size=rows),
            "x": rng.normal(shift, 1.0 + shift, size=rows),
            "z": rng.normal(10.0 * shift, 2.0, size=rows),
        }
    )


def _fit(frame: pd.DataFrame, numeric: tuple[str, ...] = ("x", "z")) -> Featurizer:
    return Featurizer.fit(frame, ["colour"], list(numeric), min_count=1)


def _logits(model: torch.nn.Module, featurizer: Featurizer, frame: pd.DataFrame) -> torch.Tensor:
    encoded = featurizer.transform(frame)
    with torch.no_grad():
        model.eval()
        return model(torch.from_numpy(encoded.categorical), torch.from_numpy(encoded.numeric))


@pytest.fixture()
def champion() -> tuple[torch.nn.Module, Featurizer]:
    """A champion net with random (non-trivial) weights, fitted on red / green / blue."""
    old = _fit(_frame(["red", "green", "blue"], 300, 0.0, seed=1))
    seed_everything(3, 1)
    return scratch_net(old, SHAPE), old


def test_transfer_keeps_known_values_and_starts_new_ones_from_the_oov_row(champion):
    source, old = champion
    # The retrain: "blue" is gone, "violet" is new, the numerics moved (new means and stds).
    new = _fit(_frame(["red", "green", "violet"], 400, 1.5, seed=2))
    assert new.vocabularies["colour"] == ["green", "red", "violet"]
    warm = transfer(source, old, new, SHAPE)

    old_rows, new_rows = source.embeddings[0].weight, warm.embeddings[0].weight
    assert warm.config.cardinalities == [4]
    row = {v: i + 1 for i, v in enumerate(old.vocabularies["colour"])}
    torch.testing.assert_close(new_rows[1], old_rows[row["green"]])
    torch.testing.assert_close(new_rows[2], old_rows[row["red"]])
    torch.testing.assert_close(new_rows[3], old_rows[0])  # violet: the champion's OOV row
    torch.testing.assert_close(new_rows[0], old_rows[0])

    # The warm net computes the champion's function on the raw rows, whatever their encoding:
    # violet scored as the champion scored an unseen value, the numerics re-standardised.
    rows = _frame(["red", "green", "violet"], 50, 0.7, seed=4)
    torch.testing.assert_close(_logits(warm, new, rows), _logits(source, old, rows))


def test_a_missing_indicator_new_in_the_retrain_starts_at_zero_weight(champion):
    source, old = champion
    frame = _frame(["red", "green", "blue"], 300, 0.0, seed=5)
    frame.loc[::7, "z"] = np.nan
    new = _fit(frame)
    assert new.missing_indicators == ["z"] and old.missing_indicators == []
    warm = transfer(source, old, new, SHAPE)
    width = sum(warm.config.embedding_dims)
    assert warm.mlp[0].weight.shape[1] == width + 3
    assert torch.count_nonzero(warm.mlp[0].weight[:, width + 2]) == 0
    rows = _frame(["red", "blue"], 20, 0.3, seed=6)
    torch.testing.assert_close(_logits(warm, new, rows), _logits(source, old, rows))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"numeric": ("x",)}, "numeric features differ"),
        ({"hidden": [8]}, "hidden layers differ"),
        ({"max_embedding_dim": 2}, "embedding sizes differ"),
        ({"quantized": True}, "quantized"),
    ],
)
def test_incompatible_champions_are_refused_naming_why(champion, change, message):
    source, old = champion
    frame = _frame(["red", "green", "blue"], 300, 0.0, seed=7)
    new = _fit(frame, change.get("numeric", ("x", "z")))
    shape = SHAPE.model_copy(
        update={k: v for k, v in change.items() if k in ("hidden", "max_embedding_dim")}
    )
    if change.get("quantized"):
        source = quantize_int8(copy.deepcopy(source))
    with pytest.raises(Incompatible, match=message):
        transfer(source, old, new, shape)


def test_fine_tune_schedule_applies_to_warm_starts_only(champion):
    source, _ = champion
    schedule = Schedule(
        batch_size=64, max_epochs=20, patience=3, learning_rate=0.01, weight_decay=0.0
    )
    tune = FineTune(max_epochs=5, patience=1, lr_scale=0.5)
    warm = Start(source, "3").schedule(schedule, tune)
    assert (warm.max_epochs, warm.patience, warm.learning_rate) == (5, 1, 0.005)
    assert Start(source, "3").schedule(schedule, None) == schedule
    assert Start(source, None, "x").schedule(schedule, tune) == schedule
    assert Start(source, "3").tag == "v3"


def test_warm_start_off_is_scratch_with_the_reason(base_params_dict, champion):
    _, featurizer = champion
    params = Params.model_validate(base_params_dict)
    assert not params.train.warm_start and not params.distill.warm_start
    begin = start(params, "student", featurizer, SHAPE)
    assert begin.version is None
    assert begin.tag == "scratch: distill.warm_start is false"
