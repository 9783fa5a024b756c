"""The oracle: a yardstick for the loop, retrained at each month start on every label so far.

No gate, no trigger, no window cap: what the loop could reach if it simply retrained on all the
labelled history every month. It never serves and never reaches the registry; the replay scores
the same rows with it so the summary can put loop, static model and oracle side by side.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile

import pandas as pd

from tasks.config import DateWindow, Params
from tasks.featurize import Featurizer
from tasks.ingest import EVENT_DATE
from tasks.io import read_partitions
from tasks.nets import NetConfig, TabularNet
from tasks.score import Champion
from tasks.split import TrainingDataError
from tasks.train import encode
from tasks.training_loop import fit, seed_everything

log = logging.getLogger(__name__)


def oracle_window(params: Params, month_start: dt.date) -> DateWindow:
    """Every labelled day before the month: from the dataset's training start to the day before."""
    return DateWindow(start=params.train.window.start, end=month_start - dt.timedelta(days=1))


def train_oracle(params: Params, month_start: dt.date) -> Champion:
    """Fit the configured recipe (`replay.oracle_net`) on hard labels of every day before
    `month_start`; the last `train.validation_days` days stop it early."""
    window = oracle_window(params, month_start)
    frame = read_partitions(
        params.validate_.validated_dir, EVENT_DATE, str(window.start), str(window.end)
    )
    target = params.dataset.target.name
    val_start = window.end - dt.timedelta(days=params.train.validation_days - 1)
    dates = pd.to_datetime(frame[EVENT_DATE]).dt.date
    train, validation = frame[dates < val_start], frame[dates >= val_start]
    if train.empty or validation.empty or train[target].nunique() < 2:
        raise TrainingDataError(
            f"oracle for {month_start}: {len(train)} train / {len(validation)} validation rows "
            f"in {window.tag}; it needs both classes before the month"
        )
    features = params.dataset.features
    featurizer = Featurizer.fit(
        train, features.categorical, features.numeric, params.train.min_category_count
    )
    recipe = params.distill if params.replay.oracle_net == "student" else params.train
    seed_everything(params.train.seed, params.train.threads)
    net = TabularNet(
        NetConfig.for_featurizer(
            featurizer, recipe.net.hidden, recipe.net.max_embedding_dim, recipe.net.dropout
        )
    )
    with tempfile.TemporaryDirectory(prefix="loopline-oracle-") as scratch:
        result = fit(
            net,
            encode(featurizer, train, target),
            encode(featurizer, validation, target),
            recipe.schedule,
            seed=params.train.seed,
            checkpoint_dir=scratch,  # a yardstick, not worth resuming: no checkpoint survives
            key=f"oracle-{month_start}",
            name=f"oracle {month_start:%Y-%m}",
        )
    log.info(
        "oracle %s: %s net on %d rows (%s..%s), best epoch %d, %.1f s",
        f"{month_start:%Y-%m}",
        params.replay.oracle_net,
        len(train) + len(validation),
        window.start,
        window.end,
        result.best_epoch,
        result.seconds,
    )
    return Champion(
        name="oracle",
        version=f"{month_start:%Y-%m}",
        model=result.model,
        featurizer=featurizer,
        threshold=0.5,
        run_id="",
        window=window.tag,
    )
