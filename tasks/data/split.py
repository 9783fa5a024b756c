"""Time-based splits: train | validation | test by event date, never shuffled across time."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tasks.core.config import DateWindow, Params, TrainConfig
from tasks.core.errors import LooplineError
from tasks.core.io import read_partitions
from tasks.core.columns import EVENT_DATE
from tasks.core.layout import training_record


class TrainingDataError(LooplineError):
    """The training window cannot be trained on (too few days, rows or classes)."""


@dataclass(frozen=True)
class SplitWindows:
    train: DateWindow
    validation: DateWindow
    test: DateWindow

    def as_dict(self) -> dict[str, dict[str, str]]:
        return {
            name: {"start": str(w.start), "end": str(w.end)}
            for name, w in (
                ("train", self.train),
                ("validation", self.validation),
                ("test", self.test),
            )
        }


@dataclass(frozen=True)
class Split:
    windows: SplitWindows
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


def training_window(cfg: TrainConfig, until: dt.date | None) -> DateWindow:
    """The configured window, or one from `window.start` to `until` (every labelled day: the
    flights' November looks like their January again), at most `max_window_days` long."""
    if until is None:
        return cfg.window
    start = cfg.window.start
    if cfg.max_window_days is not None:
        start = max(start, until - dt.timedelta(days=cfg.max_window_days - 1))
    if start > until:
        raise TrainingDataError(f"--until {until} is before train.window.start {cfg.window.start}")
    return DateWindow(start=start, end=until)


def recency_weights(frame: pd.DataFrame, end: dt.date, half_life_days: float | None):
    """Per-row weights halving every `half_life_days` before `end`; None without a half-life
    (every row counts the same, the default)."""
    if half_life_days is None:
        return None
    age = (pd.Timestamp(end) - pd.to_datetime(frame[EVENT_DATE])).dt.days.to_numpy()
    return 0.5 ** (age / half_life_days)


def freshest_labelled(split: Split, days: int) -> pd.DataFrame:
    """The labelled rows of the `days` days before the test days: training days when `days`
    reaches further back than the validation days, then the validation days, last."""
    start = split.windows.test.start - dt.timedelta(days=days)
    train = split.train.loc[pd.to_datetime(split.train[EVENT_DATE]).dt.date >= start]
    return pd.concat([train, split.validation], ignore_index=True)


def split_windows(window: DateWindow, validation_days: int, test_days: int) -> SplitWindows:
    day = dt.timedelta(days=1)
    test_start = window.end - (test_days - 1) * day
    validation_start = test_start - validation_days * day
    if validation_start <= window.start:
        raise TrainingDataError(
            f"training window {window.start}..{window.end} is too short for "
            f"{validation_days} validation + {test_days} test days; widen train.window"
        )
    return SplitWindows(
        train=DateWindow(start=window.start, end=validation_start - day),
        validation=DateWindow(start=validation_start, end=test_start - day),
        test=DateWindow(start=test_start, end=window.end),
    )


def split_frame(frame: pd.DataFrame, windows: SplitWindows, target: str) -> Split:
    """Cut a frame by event date; every part must hold rows of both classes."""
    dates = pd.to_datetime(frame[EVENT_DATE]).dt.date
    parts = {}
    for name in ("train", "validation", "test"):
        w = getattr(windows, name)
        part = frame.loc[(dates >= w.start) & (dates <= w.end)].reset_index(drop=True)
        classes = sorted(part[target].unique().tolist()) if len(part) else []
        if len(part) == 0:
            raise TrainingDataError(
                f"{name} split {w.start}..{w.end} has no rows; is the validated data there "
                "for that window? (run `loopline stage validate`)"
            )
        if len(classes) < 2:
            raise TrainingDataError(
                f"{name} split {w.start}..{w.end} holds one class only ({target}={classes[0]}); "
                "a classifier cannot learn or be judged on it"
            )
        parts[name] = part
    return Split(windows=windows, **parts)


@dataclass(frozen=True)
class TrainingRecord:
    """What later stages need to know about the teacher's run (read from training.json)."""

    window: DateWindow
    windows: SplitWindows
    data_fingerprint: str
    parent_run_id: str | None
    teacher_run_id: str | None

    @classmethod
    def load(cls, model_dir: Path) -> TrainingRecord:
        raw = json.loads(training_record(model_dir).read_text(encoding="utf-8"))
        windows = {k: DateWindow(**v) for k, v in raw["windows"].items()}
        return cls(
            window=DateWindow(**raw["window"]),
            windows=SplitWindows(**windows),
            data_fingerprint=raw["data_fingerprint"],
            parent_run_id=raw.get("mlflow", {}).get("parent_run_id"),
            teacher_run_id=raw.get("mlflow", {}).get("teacher_run_id"),
        )


def load_split(params: Params, window: DateWindow, windows: SplitWindows) -> Split:
    """The validated rows of the window, cut into train | validation | test."""
    frame = read_partitions(
        params.validate_.validated_dir, EVENT_DATE, str(window.start), str(window.end)
    )
    return split_frame(frame, windows, params.dataset.target.name)
