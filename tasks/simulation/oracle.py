"""The oracle: a yardstick for the loop, retrained at each month start on every label so far.

No gate, no trigger, no window cap: what the loop could reach if it simply retrained on all the
labelled history every month. It never serves and never reaches the registry; the replay scores
the same rows with it so the summary can put loop, static model and oracle side by side.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import pandas as pd

from tasks.core.columns import EVENT_DATE
from tasks.core.config import DateWindow, Params
from tasks.core.cost import measure
from tasks.core.io import read_partitions
from tasks.data.split import TrainingDataError
from tasks.model.featurize import Featurizer
from tasks.model.nets import NetConfig, TabularNet
from tasks.serving.champion import Champion
from tasks.training.loop import fit, seed_everything
from tasks.training.teacher import encode

log = logging.getLogger(__name__)


def oracle_window(params: Params, month_start: dt.date) -> DateWindow:
    """Every labelled day before the month: from the dataset's training start to the day before."""
    return DateWindow(start=params.train.window.start, end=month_start - dt.timedelta(days=1))


def oracle_history(params: Params, last_month_start: dt.date) -> pd.DataFrame:
    """Every validated row an oracle up to `last_month_start` may learn from, read once."""
    window = oracle_window(params, last_month_start)
    return read_partitions(
        params.validate_.validated_dir, EVENT_DATE, str(window.start), str(window.end)
    )


def train_oracle(
    params: Params,
    month_start: dt.date,
    history: pd.DataFrame | None = None,
    threads: int | None = None,
) -> Champion:
    """Fit the configured recipe (`replay.oracle_net`) on hard labels of every day before
    `month_start` (from `history` when given); the last `train.validation_days` days stop it
    early. `threads` overrides `train.threads`."""
    window = oracle_window(params, month_start)
    frame = oracle_history(params, month_start) if history is None else history
    target = params.dataset.target.name
    val_start = window.end - dt.timedelta(days=params.train.validation_days - 1)
    dates = pd.to_datetime(frame[EVENT_DATE]).dt.date
    in_window = (dates >= window.start) & (dates <= window.end)
    train = frame[in_window & (dates < val_start)]
    validation = frame[in_window & (dates >= val_start)]
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
    seed_everything(params.train.seed, threads or params.train.threads)
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


@dataclass(frozen=True)
class OracleResult:
    champion: Champion
    seconds: float  # training wall time in the worker
    cpu_s: float  # its CPU seconds: what the loop's retrains are compared with


class BackgroundOracles:
    """The month oracles, trained one after another in a spawned worker process with one thread
    while the loop runs. An oracle needs nothing from the loop, and a replay tick leaves a core
    mostly idle (Prefect, Great Expectations and Evidently run on one thread), so on 2 cores
    the oracle's ≈75 s mostly disappear from the replay's wall time. The history is read once
    here, before any retrain can rewrite the validated data, and sent to the worker once."""

    def __init__(self, params: Params, month_starts: list[dt.date]) -> None:
        history = oracle_history(params, max(month_starts))
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),  # no fork of a threaded process
            initializer=_start_worker,
            initargs=(history,),
        )
        self._futures: dict[dt.date, Future[OracleResult]] = {
            month: self._pool.submit(_train_in_worker, params, month)
            for month in sorted(set(month_starts))
        }
        self.waited_s = 0.0

    def get(self, month_start: dt.date) -> OracleResult:
        started = time.perf_counter()
        result = self._futures[month_start].result()
        self.waited_s += time.perf_counter() - started
        return result

    def __enter__(self) -> BackgroundOracles:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


_HISTORY: pd.DataFrame | None = None  # the worker's copy of oracle_history


def _start_worker(history: pd.DataFrame) -> None:
    """The worker keeps the history and stays off the terminal (the replay owns the progress
    bar); its results and timings come back through the futures."""
    global _HISTORY
    _HISTORY = history
    sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115  (lives as long as the worker)
    logging.disable(logging.INFO)


def _train_in_worker(params: Params, month_start: dt.date) -> OracleResult:
    with measure() as meter:
        champion = train_oracle(params, month_start, _HISTORY, threads=1)
    return OracleResult(champion, meter.usage.wall_s, meter.usage.cpu_s)
