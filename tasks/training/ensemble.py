"""The teacher the student learns from: the network teacher and the gradient-boosted baseline,
blended.

Out of time, a plain gradient-boosted model beats the network recipe on tabular data (on the
flights a student distilled from the baseline alone scored April 0.658, one trained on the hard
labels 0.646). The blend weight is fitted on the validation days; the baseline's targets on the
training rows come from models that never saw those rows (out of fold), or the student would
learn the baseline's in-sample overconfidence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.core.config import Params
from tasks.core.errors import LooplineError
from tasks.core.io import atomic_path
from tasks.data.split import Split
from tasks.model.featurize import Featurizer
from tasks.model.nets import TabularNet
from tasks.model.predict import predict_logits

log = logging.getLogger(__name__)

# Candidate weights of the network teacher in the blend; the rest is the baseline's.
BLEND_GRID = tuple(i / 10 for i in range(11))
_EPS = 1e-6


@dataclass(frozen=True)
class BaselineScores:
    """The baseline's probabilities for each split, in the split's row order."""

    train_out_of_fold: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def save(self, path: Path) -> Path:
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(
                handle,
                train_out_of_fold=self.train_out_of_fold,
                validation=self.validation,
                test=self.test,
            )
        return path

    @classmethod
    def load(cls, path: Path, rows: dict[str, int]) -> BaselineScores:
        """The saved scores; refused unless each split has the row count the caller expects
        (the evaluate stage ran on this very training window)."""
        if not path.exists():
            raise LooplineError(f"{path}: no baseline scores; run `loopline stage evaluate`")
        with np.load(path) as saved:
            scores = cls(saved["train_out_of_fold"], saved["validation"], saved["test"])
        found = {
            "train": len(scores.train_out_of_fold),
            "validation": len(scores.validation),
            "test": len(scores.test),
        }
        if found != rows:
            raise LooplineError(
                f"{path}: baseline scores for {found} rows, the training window has {rows}; "
                "run `loopline stage evaluate` again"
            )
        return scores


def time_folds(dates: np.ndarray, folds: int) -> list[np.ndarray]:
    """Row indices cut into `folds` runs of consecutive days (no day in two folds), so an
    out-of-fold model never saw the day it scores."""
    days = np.unique(dates)
    groups = np.array_split(days, min(folds, len(days)))
    return [np.flatnonzero(np.isin(dates, group)) for group in groups if len(group)]


def blend(weight: float, network: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """The ensemble's probabilities: `weight` of the network's, the rest the baseline's."""
    return weight * network + (1.0 - weight) * baseline


def fit_blend_weight(labels: np.ndarray, network: np.ndarray, baseline: np.ndarray) -> float:
    """The grid weight with the lowest log loss on `labels` (the validation days); ties go to
    the larger network share, so equal evidence keeps the plain distillation."""
    best_weight, best_loss = 1.0, np.inf
    for weight in sorted(BLEND_GRID, reverse=True):
        loss = _log_loss(labels, blend(weight, network, baseline))
        if loss < best_loss - 1e-9:
            best_weight, best_loss = weight, loss
    return best_weight


def to_logits(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(probabilities, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def _log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    p = np.clip(probabilities, _EPS, 1 - _EPS)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


@dataclass(frozen=True)
class TeacherTargets:
    """What the student is distilled from: soft-target logits of the train rows, and the same
    teacher's test-day probabilities (the AUC a student is held to)."""

    network_weight: float
    train_logits: np.ndarray
    test_scores: np.ndarray


def teacher_targets(
    params: Params, split: Split, teacher: TabularNet, featurizer: Featurizer
) -> TeacherTargets:
    """The network teacher alone (`distill.teacher: network`) or blended with the baseline's
    saved scores, the weight fitted on the validation days."""
    train_logits = predict_logits(teacher, featurizer, split.train)
    test = sigmoid(predict_logits(teacher, featurizer, split.test))
    if params.distill.teacher == "network":
        return TeacherTargets(1.0, train_logits, test)
    rows = {"train": len(split.train), "validation": len(split.validation), "test": len(split.test)}
    baseline = BaselineScores.load(params.baseline.scores_path, rows)
    weight = fit_blend_weight(
        split.validation[params.dataset.target.name].to_numpy(),
        sigmoid(predict_logits(teacher, featurizer, split.validation)),
        baseline.validation,
    )
    log.info(
        "distill: ensemble teacher, %.0f%% network + %.0f%% baseline (fitted on "
        "%d validation rows)",
        weight * 100,
        (1 - weight) * 100,
        len(split.validation),
    )
    return TeacherTargets(
        weight,
        to_logits(blend(weight, sigmoid(train_logits), baseline.train_out_of_fold)),
        blend(weight, test, baseline.test),
    )
