"""Does the loop pay on data it was not tuned on? Two small synthetic data sets (≈25 rows a
day, a year), the shipped defaults, the whole loop for real (stages, Prefect, MLflow, GX,
Evidently), replayed April to December:

- a world that does not change: the loop never retrains;
- a seasonal world (summer temperatures the January-March model never saw, and a target that
  depends on them): the loop is at least the static model in every quarter and earns at least
  half of what retraining every month on every label (the oracle) earns over never retraining.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from helpers import FAST_TRAINING

from tasks import stages
from tasks.core.config import load_params

YEAR = 2024
ROWS_PER_DAY = 25
DATASET = {
    "name": "cold-chain",
    "row_noun": "shipment",
    "source": {"kind": "file", "path": "shipments.csv"},
    "event_time": "packed_at",
    "window": {"start": f"{YEAR}-01-01", "end": f"{YEAR}-12-31"},
    "target": {"name": "spoiled", "column": "spoiled", "op": "==", "value": 1},
    "id_columns": ["shipment_id"],
    "leakage_columns": [],
    "features": {"categorical": ["depot"], "numeric": ["temp", "hour"]},
}
RULES = {"depot": {"values": ["a", "b", "c"]}, "temp": {"min": -40, "max": 60}}


def shipments(seasonal: bool, seed: int = 5) -> pd.DataFrame:
    """A year of shipments. `seasonal`: temperatures follow the seasons and spoilage follows
    temperature non-linearly, so a winter model knows nothing of summer; else every day is
    drawn from one distribution."""
    rng = np.random.default_rng(seed)
    days = pd.date_range(f"{YEAR}-01-01", f"{YEAR}-12-31", freq="D")
    counts = rng.poisson(ROWS_PER_DAY, len(days))
    stamps = np.repeat(days.values, counts) + rng.integers(0, 86_400, counts.sum()).astype(
        "timedelta64[s]"
    )
    n = len(stamps)
    day_of_year = pd.DatetimeIndex(stamps).dayofyear.to_numpy()
    if seasonal:
        temp = 10 - 13 * np.cos(2 * np.pi * day_of_year / 366) + rng.normal(0, 3, n)
    else:
        temp = rng.normal(10, 9, n)
    depot = rng.choice(["a", "b", "c"], n)
    logit = 1.6 * np.sin(temp / 4) + 0.6 * (depot == "b") - 1.0
    return pd.DataFrame(
        {
            "shipment_id": [f"s{i:06d}" for i in range(n)],
            "packed_at": pd.DatetimeIndex(stamps).strftime("%Y-%m-%d %H:%M:%S"),
            "depot": depot,
            "temp": temp.round(1),
            "hour": pd.DatetimeIndex(stamps).hour,
            "spoiled": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int),
        }
    )


@pytest.fixture()
def shipments_project(tmp_path, base_params_dict, monkeypatch):
    def build(seasonal: bool):
        shipments(seasonal).to_csv(tmp_path / "shipments.csv", index=False)
        raw = copy.deepcopy(base_params_dict)
        raw["dataset"] = DATASET
        raw["validate"]["rules"] = RULES
        raw["train"]["window"] = {"start": f"{YEAR}-01-01", "end": f"{YEAR}-03-31"}
        raw["registry"] = {"model_name": "spoilage", "teacher_model_name": "spoilage-teacher"}
        raw["replay"]["cadence_days"] = 28  # fewer ticks: the decisions, not the clock
        # Small nets train in seconds; every decision (probe, gate, evidence) keeps its default.
        for section in ("train", "distill"):
            for key in ("net", "schedule"):
                raw[section][key] = FAST_TRAINING[section][key]
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        monkeypatch.chdir(tmp_path)
        params = load_params("params.yaml")
        for name in ("ingest", "validate", "train", "evaluate", "distill", "promote"):
            stages.STAGES[name](params)
        result = CliRunner().invoke(
            cli_app(), ["demo", "--start", f"{YEAR}-04-01", "--end", f"{YEAR}-12-31"]
        )
        assert result.exit_code == 0, result.output
        return json.loads((tmp_path / "reports/replay/summary.json").read_text())

    return build


def cli_app():
    from flows.cli import cli

    return cli


def _quarters(summary: dict) -> pd.DataFrame:
    months = pd.DataFrame(summary["months"])
    months["quarter"] = pd.PeriodIndex(months["month"], freq="M").quarter
    weighted = months[["loop_auc", "static_auc", "oracle_auc"]].mul(months["rows"], axis=0)
    return (
        weighted.groupby(months["quarter"])
        .sum()
        .div(months.groupby("quarter")["rows"].sum(), axis=0)
    )


def test_a_world_that_does_not_change_is_never_retrained(shipments_project, prefect_harness):
    summary = shipments_project(seasonal=False)
    assert [t for t in summary["ticks"] if t["retrain"]] == []
    assert {t["model_version"] for t in summary["ticks"]} == {summary["static_version"]}


def test_a_seasonal_world_is_retrained_and_it_pays(shipments_project, prefect_harness):
    summary = shipments_project(seasonal=True)
    quarters = _quarters(summary)
    # at least the static model in every quarter (a hair of noise allowed on a tie)
    assert (quarters["loop_auc"] >= quarters["static_auc"] - 0.005).all(), quarters
    gain = (quarters["loop_auc"] - quarters["static_auc"]).mean()
    oracle_gain = (quarters["oracle_auc"] - quarters["static_auc"]).mean()
    assert oracle_gain > 0.02, quarters  # the world did change: retraining can earn something
    assert gain >= 0.5 * oracle_gain, quarters
    assert any(t["retrain"] for t in summary["ticks"])
