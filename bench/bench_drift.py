"""Drift with Evidently: one nightly batch (warm), and 1M rows under the sampling policy
(`drift.max_rows`, a seeded uniform sample) against the same check on every row.
"""

from __future__ import annotations

import pandas as pd

from bench.common import Row, at_most, best_of
from bench.project import Scratch
from bench.workload import variant
from tasks.core.columns import EVENT_DATE
from tasks.core.config import Params
from tasks.model.predict import predict_proba
from tasks.monitoring.drift import SCORE, drift_sample, feature_drift
from tasks.registry.reference import load_reference
from tasks.serving.champion import resolve_champion

ROWS = 1_000_000
UNSAMPLED_ROWS = 200_000  # every row through Evidently: the common way, at a size that ends


def run(scratch: Scratch) -> list[Row]:
    params = scratch.params
    reference = load_reference(resolve_champion(params).run_id)
    rows = _scored_rows(params)
    day = rows[rows[EVENT_DATE] == rows[EVENT_DATE].max()]
    feature_drift(params, reference, day)  # warm: imports, Evidently's first report
    nightly = best_of(lambda: feature_drift(params, reference, day))
    big = pd.concat([rows] * (ROWS // len(rows) + 1), ignore_index=True).head(ROWS)
    sampled = best_of(lambda: feature_drift(params, reference, drift_sample(params.drift, big)), 1)
    full = best_of(lambda: feature_drift(params, reference, big.head(UNSAMPLED_ROWS)), 1)
    return [
        at_most("drift", f"Evidently, one nightly batch ({len(day):,} rows)", nightly, "s", 3.0),
        at_most(
            "drift",
            f"Evidently, {ROWS:,} rows sampled to {params.drift.max_rows:,}",
            sampled,
            "s",
            30.0,
            "seeded uniform sample (drift.max_rows, drift.seed); the size is logged",
        ),
        Row(
            "drift",
            f"common: Evidently on all of {UNSAMPLED_ROWS:,} rows",
            full,
            "s",
            f"{full / sampled:.1f}x the sampled 1M check",
        ),
    ]


def _scored_rows(params: Params) -> pd.DataFrame:
    """The last month of real rows with the student's scores, as the nightly check sees them."""
    from tasks.core.io import read_table

    frame = read_table(params.ingest.features_dir)
    frame = frame[frame[EVENT_DATE].isin(sorted(frame[EVENT_DATE].unique())[-31:])]
    student = variant(params, "student")
    return frame.assign(**{SCORE: predict_proba(student.model, student.featurizer, frame)})
