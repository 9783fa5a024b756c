"""The model behind an alias, resolved once: what nightly, bulk and shadow scoring serve with.

The alias is read once: the version it names is immutable, so a promotion moving the alias
meanwhile cannot mix two models in one run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tasks.core import tags as tag
from tasks.core.config import Params
from tasks.core.errors import LooplineError
from tasks.model.featurize import Featurizer
from tasks.registry import tracking
from tasks.registry.aliases import alias_version
from tasks.registry.status import no_champion_hint
from tasks.registry.versions import load_registered


class NoChampionError(LooplineError):
    """Nothing to score with: no version holds the `champion` alias yet."""


class MissingFeaturesError(LooplineError):
    """The input lacks feature columns the model was trained on (its own list, which may no
    longer be params' `dataset.features`): nothing is scored."""


@dataclass(frozen=True)
class Champion:
    """The serving model, resolved once: its registry identity, network and featurizer."""

    name: str
    version: str
    model: Any
    featurizer: Featurizer
    threshold: float
    run_id: str
    window: str | None = None  # "start..end" of the training window, from the version's tags
    tags: dict[str, str] = field(default_factory=dict)  # the version's registry tags


def resolve_champion(params: Params) -> Champion:
    champion = resolve_alias(params, tag.CHAMPION)
    if champion is None:
        raise NoChampionError(no_champion_hint(params))
    return champion


def resolve_alias(params: Params, alias: str) -> Champion | None:
    """The version behind `alias`, loaded once from its registered artifacts (None if unset).

    The alias is read once: the version it names is immutable, so a promotion moving the alias
    meanwhile cannot mix two models. Files that fail their registration checksums are refused
    (ModelIntegrityError) and store faults are retried (TrackingStoreError once they persist).
    """
    name = params.registry.model_name
    version = alias_version(tracking.client(params.tracking), name, alias)
    return None if version is None else load_version(params, version)


def load_version(params: Params, version: str) -> Champion:
    """One registered version of `registry.model_name`, its files checked (ModelIntegrityError
    when they differ from the registration)."""
    name = params.registry.model_name
    model, featurizer, details = load_registered(params.tracking, name, version)
    threshold = float(details.tags.get(tag.THRESHOLD, 0.5))
    return Champion(
        name,
        version,
        model,
        featurizer,
        threshold,
        details.run_id,
        details.tags.get(tag.WINDOW),
        dict(details.tags),
    )


def require_features(champion: Champion, columns: Iterable[str], where: str) -> None:
    """Fail in one line when `columns` (of the input named by `where`) lack any column the model
    was trained on. Each model scores with its own feature list, saved with it: after params
    drop a feature, a champion trained with it still needs it in its input."""
    present = set(columns)
    missing = [c for c in champion.featurizer.columns if c not in present]
    if missing:
        raise MissingFeaturesError(
            f"{where}: lacks feature column(s) {missing} that {champion.name} "
            f"v{champion.version} was trained on; add them to the input (nulls are allowed), "
            "or promote a version trained without them"
        )


def score_frame(
    champion: Champion, frame: pd.DataFrame, chunk_rows: int, *, where: str
) -> tuple[np.ndarray, dict[str, int]]:
    """The champion's probabilities for `frame` (named by `where` in errors) in chunks of
    `chunk_rows`, plus how many values of each categorical fell into the out-of-vocabulary
    bucket. The model reads its own feature columns; others are ignored."""
    from tasks.model.predict import predict_with_unseen  # torch: only once something is scored

    require_features(champion, frame.columns, where)
    return predict_with_unseen(champion.model, champion.featurizer, frame, chunk_rows)
