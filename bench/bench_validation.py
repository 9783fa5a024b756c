"""Validation of the full feature table: our GX contract vs the raw limit vs the common approach.

- ours: `check_table` (one GX pass per table, one cached ephemeral context per process);
- raw limit: the same rules as vectorised pandas masks, no framework;
- common approach: a fresh GX context, datasource and suite per validation, as tutorials do.
"""

from __future__ import annotations

import logging

import pandas as pd

from bench.common import Row, best_of
from bench.project import Scratch
from tasks.core.config import Params
from tasks.core.io import read_table
from tasks.data.contract import build_contract
from tasks.data.validate import _gx_validate, check_table

log = logging.getLogger(__name__)


def raw_masks(frame: pd.DataFrame, params: Params) -> pd.Series:
    """The row rules as plain pandas: the floor any framework adds its overhead to."""
    dataset, rules = params.dataset, params.validate_.rules
    bad = frame[dataset.id_columns[0]].isna() | frame[dataset.id_columns[0]].duplicated(keep=False)
    bad |= ~frame[dataset.event_time].between(
        pd.Timestamp(dataset.window.start), pd.Timestamp(dataset.window.end) + pd.Timedelta(days=1)
    )
    for col, rule in rules.items():
        values = frame[col]
        if not rule.nullable:
            bad |= values.isna()
        if rule.values is not None:
            bad |= values.notna() & ~values.isin(rule.values)
        if rule.min is not None or rule.max is not None:
            low = -float("inf") if rule.min is None else rule.min
            high = float("inf") if rule.max is None else rule.max
            bad |= values.notna() & ~values.between(low, high)
    return bad


def common_approach(frame: pd.DataFrame, expectations: list) -> None:
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    batch = (
        context.data_sources.add_pandas("p")
        .add_dataframe_asset("a")
        .add_batch_definition_whole_dataframe("b")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    suite = context.suites.add(gx.ExpectationSuite(name="s"))
    for e in expectations:
        suite.add_expectation(e.copy(deep=True))
    batch.validate(suite, result_format={"result_format": "COMPLETE"})


def run(scratch: Scratch) -> list[Row]:
    params = scratch.params
    frame = read_table(params.ingest.features_dir)
    contract = build_contract(params.dataset, params.validate_.rules, min_rows=1)
    rows = len(frame)
    _gx_validate(frame.head(100), contract.table_level[:1])  # warm the cached context

    ours = best_of(lambda: check_table(frame, contract, "bench", 1.0), repeat=3)
    raw = best_of(lambda: raw_masks(frame, params), repeat=3)
    common = best_of(
        lambda: common_approach(frame, contract.table_level + contract.row_level), repeat=1
    )

    return [
        Row("validation", "rows", rows, "rows"),
        Row("validation", "ours (GX contract)", ours, "s", f"{rows / ours:,.0f} rows/s"),
        Row("validation", "raw limit (pandas masks)", raw, "s", f"{rows / raw:,.0f} rows/s"),
        Row("validation", "common (fresh GX context)", common, "s", f"{rows / common:,.0f} rows/s"),
        Row("validation", "ours / raw limit", ours / raw, "x", "time ratio, lower is better"),
        Row("validation", "common / ours", common / ours, "x", "speed-up over the common way"),
    ]
