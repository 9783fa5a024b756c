"""The policy benchmark's row: what one replay bought and cost, read from its summary."""

from __future__ import annotations

import pytest

from bench.bench_policies import policy_row
from tasks.core.config import CostConfig

# 36 per CPU-hour: each CPU-second of the probes costs 0.01
COST = CostConfig.model_validate(
    {
        "currency": "USD",
        "cpu_hour": 36.0,
        "gpu_hour": 0.0,
        "production": {"rows_per_night": 1, "nights_per_model_life": 1, "value_per_auc_point": 1},
        "ledger_path": "cost.json",
    }
)


def _tick(retrain: bool, decision: str | None, cost: float | None) -> dict:
    return {
        "retrain": retrain,
        "promotion": {"decision": decision} if decision else None,
        "training_cost": cost,
        "scoring_cost": {"cost": 0.01},
    }


SUMMARY = {
    "months": [
        {"month": "2013-04", "loop_auc": 0.70, "static_auc": 0.70, "oracle_auc": 0.69},
        {"month": "2013-05", "loop_auc": 0.74, "static_auc": 0.70, "oracle_auc": 0.73},
        {"month": "2013-06", "loop_auc": 0.69, "static_auc": 0.71, "oracle_auc": 0.72},
    ],
    "ticks": [
        _tick(False, None, None),
        _tick(True, "promoted", 0.02),
        _tick(True, "rejected", 0.03),
    ],
    "training_cpu_s": {"loop": 300.0, "loop_probes": 20.0, "oracle": 250.0},
}


def test_policy_row_sums_what_the_replay_bought_and_paid():
    row = policy_row("cost_aware", SUMMARY, COST)
    assert row["loop_auc"] == pytest.approx(0.71)
    assert row["oracle_auc"] == pytest.approx((0.69 + 0.73 + 0.72) / 3)
    assert row["worst_month_vs_static"] == pytest.approx(-0.02)
    assert (row["retrains"], row["promoted"]) == (2, 1)
    # the probes count as what the policy spends on deciding
    assert row["training_cpu_s"] == 320.0 and row["oracle_cpu_s"] == 250.0
    # a rejected retrain was paid for too, and so were the probes (20 CPU-s)
    assert row["total_cost"] == pytest.approx(0.05 + 0.03 + 0.20)


def test_policy_row_without_oracle_or_labels():
    summary = {
        **SUMMARY,
        "months": [],
        "training_cpu_s": {"loop": 0.0, "loop_probes": 0.0, "oracle": None},
    }
    row = policy_row("never", summary, COST)
    assert row["loop_auc"] is None and row["oracle_cpu_s"] is None
