"""Cost accounting: measured seconds (pure), prices, the per-stage ledger and what a version is
charged, and the figures `loopline status` shows (real stages, MLflow SQLite in tmp)."""

from __future__ import annotations

import json
import math
import time

import pytest

from tasks.core.config import CostConfig, Params
from tasks.core.cost import Usage, lifetime, measure, per_million
from tasks.registry.ledger import (
    CHARGED_STAGES,
    metered,
    scoring_cost,
    training_cost,
)

CFG = CostConfig(
    currency="USD",
    cpu_hour=0.04,
    gpu_hour=2.5,
    production={
        "rows_per_night": 1_000_000,
        "nights_per_model_life": 28,
        "value_per_auc_point": 1.0,
    },
    ledger_path="ledger.json",
)


def test_measure_counts_cpu_of_busy_work_and_not_of_sleep():
    with measure() as busy:
        start = time.process_time()
        while time.process_time() - start < 0.3:
            pass
    usage = busy.usage
    assert usage.cpu_s >= 0.29 and usage.gpu_s == 0
    # One busy thread: CPU at most wall (a shared machine may stretch the wall time at will).
    assert usage.cpu_s <= usage.wall_s + 0.05

    with measure() as idle:
        time.sleep(0.3)
    assert idle.usage.wall_s >= 0.3 and idle.usage.cpu_s < 0.25 * idle.usage.wall_s


def test_gpu_seconds_only_when_the_work_ran_on_a_gpu():
    with measure(on_gpu=True) as meter:
        time.sleep(0.05)
    assert meter.usage.gpu_s == meter.usage.wall_s > 0


def test_money_per_million_and_lifetime():
    usage = Usage(wall_s=10.0, cpu_s=3600.0, gpu_s=1800.0)
    assert usage.money(CFG) == pytest.approx(0.04 + 2.5 / 2)
    assert (usage + usage).money(CFG) == pytest.approx(2 * usage.money(CFG))
    assert usage.as_dict(CFG)["cost"] == usage.money(CFG)

    scoring = Usage(wall_s=40.0, cpu_s=36.0)  # 0.0004 USD for 2M rows
    assert per_million(scoring, 2_000_000, CFG) == pytest.approx(0.0002)
    assert math.isnan(per_million(scoring, 0, CFG))

    life = lifetime(0.01, 0.0002, CFG)
    inference = 0.0002 * 1_000_000 * 28 / 1e6  # per 1M x nightly rows x nights
    assert life["inference"] == pytest.approx(inference)
    assert life["total"] == pytest.approx(0.01 + inference)
    assert life["inference_share"] == pytest.approx(inference / (0.01 + inference))
    assert life["rows"] == 28_000_000


def test_scoring_cost_rates():
    cost = scoring_cost(Usage(wall_s=4.0, cpu_s=3.0), 30_000, CFG)
    assert cost["cost"] == pytest.approx(3.0 * 0.04 / 3600)
    assert cost["cpu_s_per_million"] == pytest.approx(100.0)
    assert cost["cost_per_million"] == pytest.approx(100.0 * 0.04 / 3600)


@pytest.fixture()
def params(base_params_dict, tmp_path) -> Params:
    params = Params.model_validate(base_params_dict)
    return params.model_copy(
        update={"cost": params.cost.model_copy(update={"ledger_path": tmp_path / "ledger.json"})}
    )


def test_a_rerun_replaces_its_stage_and_a_failure_records_nothing(params):
    with metered(params, "train"):
        time.sleep(0.01)
    with metered(params, "train"):
        time.sleep(0.1)
    with pytest.raises(RuntimeError), metered(params, "evaluate"):
        raise RuntimeError("the stage failed")
    ledger = json.loads(params.cost.ledger_path.read_text())
    assert set(ledger["stages"]) == {"train"}
    assert ledger["stages"]["train"]["wall_s"] >= 0.1
    assert ledger["machine"]["cpu_count"] >= 1 and ledger["currency"] == params.cost.currency


def test_ingest_is_charged_once(params):
    from tasks.core.io import write_json

    entry = {"wall_s": 1.0, "cpu_s": 1.0, "gpu_s": 0.0}
    ledger = {"stages": {name: dict(entry) for name in (*CHARGED_STAGES, "promote")}}
    write_json(params.cost.ledger_path, ledger)
    assert set(training_cost(params, "1")["stages"]) == set(CHARGED_STAGES)  # promote: never

    ledger["stages"]["ingest"]["charged_to"] = "1"
    write_json(params.cost.ledger_path, ledger)
    assert training_cost(params, "1")["cpu_s"] == 5.0  # the same version gated again
    later = training_cost(params, "2")
    assert "ingest" not in later["stages"] and later["cpu_s"] == 4.0
    assert later["total"] == pytest.approx(4.0 * params.cost.cpu_hour / 3600)
