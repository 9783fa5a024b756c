"""Days without data are normal days: a replay over a feature table with weekends and a whole
week missing scores nothing on them, says so, and goes on; drift compares the latest days that
have data; and a replay that fails keeps the ticks it finished."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shutil
from collections.abc import Iterator

import pandas as pd
import pytest
import yaml

from tasks.core.columns import EVENT_DATE
from tasks.core.config import load_params
from tasks.core.errors import LooplineError
from tasks.core.layout import day_paths, replay_summary_path
from tasks.registry.promote import run_promote
from tasks.simulation.replay import replay
from tasks.simulation.summary import load_replay

D = dt.date
START, END = D(2013, 1, 10), D(2013, 1, 31)
WEEKENDS = [D(2013, 1, 12), D(2013, 1, 13), D(2013, 1, 19), D(2013, 1, 20)]
WHOLE_WEEK = [D(2013, 1, 21) + dt.timedelta(days=i) for i in range(7)]
GAPS = WEEKENDS + WHOLE_WEEK


@pytest.fixture()
def gappy(trained_copy):
    """The trained slice promoted, its feature table without the weekends and a whole week."""
    path = trained_copy / "params.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["replay"] = {**raw["replay"], "cadence_days": 11, "oracle": False}
    raw["retrain"] = {**raw["retrain"], "policy": "never"}
    raw["drift"] = {**raw["drift"], "reference_rows": 1000}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    params = load_params("params.yaml")
    assert run_promote(params).decision == "promoted"
    for day in GAPS:
        shutil.rmtree(params.ingest.features_dir / f"{EVENT_DATE}={day}")
    return params


def _tick(params_path: str = "params.yaml"):
    from flows.inference import inference_flow

    def run(first: dt.date, last: dt.date) -> dict:
        return inference_flow(date=last.isoformat(), start=first.isoformat())

    return run


@pytest.fixture()
def scoring_lines(monkeypatch) -> Iterator[list[str]]:
    """What nightly scoring logs at INFO (Prefect's logging setup leaves the root at WARNING)."""
    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("tasks.serving.nightly")
    monkeypatch.setattr(logger, "level", logging.INFO)
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def test_a_replay_over_missing_days_scores_nothing_on_them_and_goes_on(
    gappy, prefect_harness, scoring_lines
):
    params = gappy
    summary = replay(params, START, END, _tick())
    assert [t["date"] for t in summary["ticks"]] == ["2013-01-20", "2013-01-31"]
    assert summary["complete"] is True
    for day in GAPS:  # a header-only batch, an empty predictions file, no labels
        paths = day_paths(params, day)
        assert len(pd.read_parquet(paths["incoming"])) == 0
        assert len(pd.read_parquet(paths["predictions"])) == 0
        assert not paths["labels"].exists()
        assert sum(line.startswith(f"score {day}: no flights in") for line in scoring_lines) == 1
    with_data = [d for d in pd.date_range(START, END).date if d not in GAPS]
    assert sum(t["scored"] for t in summary["ticks"]) == sum(
        len(pd.read_parquet(day_paths(params, d)["predictions"])) for d in with_data
    )
    # The last tick's drift compares the 7 latest days with data, back across the gap.
    window = [D(2013, 1, d) for d in (31, 30, 29, 28, 18, 17, 16)]
    drift = json.loads((params.drift.report_dir / "2013-01-31.json").read_text())
    assert drift["scored_rows"] == sum(
        len(pd.read_parquet(day_paths(params, d)["predictions"])) for d in window
    )
    assert {m["month"] for m in summary["months"]} == {"2013-01"}


def test_a_replay_that_fails_keeps_the_ticks_it_finished(gappy, prefect_harness):
    params = gappy
    run = _tick()

    def fails_on_the_second_tick(first: dt.date, last: dt.date) -> dict:
        if first > START:
            raise LooplineError("upstream went away")
        return run(first, last)

    with pytest.raises(LooplineError, match="upstream went away"):
        replay(params, START, END, fails_on_the_second_tick)
    kept = json.loads(replay_summary_path(params).read_text())
    assert kept["complete"] is False and [t["date"] for t in kept["ticks"]] == ["2013-01-20"]
    with pytest.raises(
        LooplineError, match=re.escape("stopped after 2013-01-20 (1 tick(s) kept there)")
    ):
        load_replay(params)


def test_a_day_outside_the_feature_table_is_still_an_error(gappy):
    from tasks.simulation.upstream import write_day_batch

    with pytest.raises(
        LooplineError, match=re.escape("the feature table covers 2013-01-01..2013-01-31")
    ):
        write_day_batch(gappy, D(2013, 2, 14))
