"""What a version is charged once the real stages ran (ledger, version tags, parent run) and
how `loopline status` shows it."""

from __future__ import annotations

import mlflow
import pytest
from helpers import run_cli

from tasks import stages
from tasks.core.config import load_params
from tasks.data.split import TrainingRecord
from tasks.registry.ledger import CHARGED_STAGES, load_ledger


def test_promote_charges_the_version_and_status_shows_it(trained_copy, monkeypatch):
    """The `trained` project ran ingest..distill through `tasks.stages`, as dvc and the flow do."""
    params = load_params("params.yaml")
    decision = stages.promote(params)

    ledger = load_ledger(params)
    assert set(ledger["stages"]) == {*CHARGED_STAGES, "promote"}
    for name, entry in ledger["stages"].items():
        assert entry["wall_s"] > 0 and entry["cpu_s"] > 0 and entry["cost"] > 0, name
        assert entry["gpu_s"] == 0 and entry["at"], name
    assert ledger["stages"]["ingest"]["charged_to"] == decision.version
    assert ledger["stages"]["train"]["torch_threads"] >= 1

    client = mlflow.MlflowClient()
    tags = client.get_model_version(params.registry.model_name, decision.version).tags
    charged = float(tags["loopline.training_cost"])
    cpu_s = sum(ledger["stages"][name]["cpu_s"] for name in CHARGED_STAGES)
    assert charged == pytest.approx(cpu_s * params.cost.cpu_hour / 3600) and charged > 0
    assert float(tags["loopline.training_cpu_s"]) == pytest.approx(cpu_s)
    parent = client.get_run(TrainingRecord.load(params.train.model_dir).parent_run_id).data
    assert parent.metrics["cost_training"] == pytest.approx(charged)
    assert parent.metrics["cost_train_cpu_s"] > 0
    assert int(parent.tags["loopline.machine.cpu_count"]) >= 1

    monkeypatch.setenv("COLUMNS", "250")
    code, out, err = run_cli("status", cwd=trained_copy)
    assert code == 0, err
    line = next(line for line in out.splitlines() if "champion v" in line)
    assert f"training {charged:.4g} {params.cost.currency}" in line
    assert "per 1M predictions" in line and "latency p95" in line and "lifetime" in line
