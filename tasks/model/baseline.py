"""The gradient-boosted baseline's recipe: scikit-learn's HistGradientBoosting on a featurizer's
encoding (categoricals as native categories). The evaluate stage judges the networks against
it, the ensemble teacher blends it in, and the retrain probe measures what new labels are
worth with it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.core.config import BaselineConfig
from tasks.model.featurize import Featurizer

MAX_NATIVE_CATEGORIES = 255  # HistGradientBoosting's limit; wider vocabularies stay ordinal


def baseline_matrix(featurizer: Featurizer, frame: pd.DataFrame) -> np.ndarray:
    encoded = featurizer.transform(frame)
    return np.hstack([encoded.categorical.astype(np.float32), encoded.numeric])


def baseline_model(cfg: BaselineConfig, featurizer: Featurizer, seed: int):
    """An unfitted classifier, early stopping on the X_val/y_val its fit is given."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    native = [card <= MAX_NATIVE_CATEGORIES for card in featurizer.cardinalities]
    return HistGradientBoostingClassifier(
        learning_rate=cfg.learning_rate,
        max_iter=cfg.max_iter,
        max_leaf_nodes=cfg.max_leaf_nodes,
        min_samples_leaf=cfg.min_samples_leaf,
        l2_regularization=cfg.l2_regularization,
        categorical_features=np.array(native + [False] * featurizer.numeric_width),
        early_stopping=True,
        n_iter_no_change=cfg.n_iter_no_change,
        random_state=seed,
    )
