"""The promotion gate, aliases, history, rollback, forced promotion and racing promotions, on a
real MLflow registry (SQLite in tmp) with models trained on the data slice."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from helpers import GATE_SCRIPT, run_cli, set_params

from tasks import stages
from tasks.core.config import PromoteConfig, SelectConfig, load_params
from tasks.registry.aliases import PromotionError, alias_version, force_promote, rollback
from tasks.registry.history import recent
from tasks.registry.promote import gate_checks, gate_version, run_promote

CFG = PromoteConfig(
    select=SelectConfig(policy="fixed", auc_tolerance=0.005),
    min_auc=0.65,
    max_auc_drop=0.005,
    min_teacher_auc_share=0.98,
    max_latency_ms_p95=25.0,
    max_artifact_bytes=1000,
    max_ece=0.05,
    allow_teacher=False,
    history_db=Path("h.db"),
    decision_path=Path("d.json"),
)
GOOD = {"latency_ms_p95": 5.0, "artifact_bytes": 500, "ece": 0.01}


def _failed(checks) -> set[str]:
    return {c.name for c in checks if not c.passed}


def test_first_model_must_clear_absolute_floors():
    kwargs = {"validation_passed": True, "champion_auc": None, "teacher_auc": 0.70}
    assert _failed(gate_checks(CFG, candidate_auc=0.70, metrics=GOOD, **kwargs)) == set()
    below = gate_checks(CFG, candidate_auc=0.60, metrics=GOOD, **kwargs)
    assert _failed(below) == {"auc_floor", "teacher_auc_share"}
    assert "auc_vs_champion" not in {c.name for c in below}  # nothing to compare with yet


def test_each_budget_is_a_named_check():
    metrics = {"latency_ms_p95": 30.0, "artifact_bytes": 5000, "ece": 0.2}
    checks = gate_checks(
        CFG,
        validation_passed=False,
        candidate_auc=0.7,
        champion_auc=0.72,
        teacher_auc=0.7,
        metrics=metrics,
    )
    assert _failed(checks) == {
        "validation",
        "auc_vs_champion",
        "latency_p95",
        "artifact_size",
        "calibration",
    }
    latency = next(c for c in checks if c.name == "latency_p95")
    assert (latency.value, latency.threshold) == (30.0, 25.0)
    assert "30.00 ms per batch vs budget 25.0 ms" in latency.reason()


def _aliases(params) -> dict[str, str | None]:
    client = mlflow.MlflowClient()
    name = params.registry.model_name
    return {a: alias_version(client, name, a) for a in ("champion", "challenger", "previous")}


def test_better_or_equal_candidate_is_promoted_and_previous_kept(trained_copy):
    params = load_params("params.yaml")
    first = run_promote(params)
    assert first.decision == "promoted" and first.compared_to is None
    stages.distill(params)  # the same recipe again: a second, equally good candidate
    second = run_promote(params)
    assert second.decision == "promoted"
    assert second.compared_to == first.version
    assert _aliases(params) == {
        "champion": second.version,
        "challenger": None,
        "previous": first.version,
    }
    saved = json.loads(params.promote.decision_path.read_text())
    assert saved["decision"] == "promoted" and saved["version"] == second.version


def _register_inverted_student(params) -> str:
    """A clearly worse candidate: the trained student with its output layer negated."""
    import torch

    from tasks.model.nets import load_model, save_model
    from tasks.registry.versions import log_and_register

    model, featurizer = load_model(params.distill.model_dir)
    with torch.no_grad():
        model.mlp[-1].weight.neg_()
        model.mlp[-1].bias.neg_()
    folder = save_model(model, featurizer, Path("models/inverted"))
    with mlflow.start_run(run_name="inverted"):
        return log_and_register(
            folder,
            params.registry.model_name,
            _holdout(params).head(5),
            {"loopline.variant": "student"},
            params.tracking,
        )


def _holdout(params) -> pd.DataFrame:
    from tasks.data.split import TrainingRecord, load_split

    record = TrainingRecord.load(params.train.model_dir)
    return load_split(params, record.window, record.windows).test


def test_worse_candidate_stays_challenger_with_reasons(trained_copy):
    params = load_params("params.yaml")
    champion = run_promote(params).version
    worse = _register_inverted_student(params)
    metrics = json.loads((params.evaluate.metrics_dir / "candidate.json").read_text())
    decision = gate_version(params, worse, _holdout(params), metrics, metrics["roc_auc"], True)
    assert decision.decision == "rejected"
    failed = {r.split(":")[0] for r in decision.reasons}
    assert {"auc_vs_champion", "auc_floor"} <= failed
    assert _aliases(params)["champion"] == champion
    assert _aliases(params)["challenger"] == worse
    tags = mlflow.MlflowClient().get_model_version(params.registry.model_name, worse).tags
    assert tags["loopline.decision"] == "rejected"
    assert "auc_vs_champion" in tags["loopline.decision_reasons"]


def test_latency_budget_breach_is_refused(trained_copy):
    set_params(trained_copy, "promote", max_latency_ms_p95=0.001)
    params = load_params("params.yaml")
    decision = run_promote(params)
    assert decision.decision == "rejected"
    assert [r.split(":")[0] for r in decision.reasons] == ["latency_p95"]
    assert _aliases(params)["champion"] is None  # the first model too: nothing blessed for free


def test_rollback_and_its_errors(trained_copy):
    params = load_params("params.yaml")
    first = run_promote(params)
    with pytest.raises(PromotionError, match="no previous champion to roll back to"):
        rollback(params, "nothing to go back to")
    stages.distill(params)
    second = run_promote(params)
    back = rollback(params, "bad scores seen in production")
    assert back.decision == "rolled_back" and back.version == first.version
    assert _aliases(params)["champion"] == first.version
    assert _aliases(params)["previous"] == second.version
    assert recent(params.promote.history_db, params.registry.model_name)[0].reasons == [
        f"rollback from {second.version}: bad scores seen in production"
    ]
    with pytest.raises(PromotionError, match="has no version 99"):
        rollback(params, "typo", to_version="99")


def test_forced_promotion_is_recorded_as_such(trained_copy):
    set_params(trained_copy, "promote", max_latency_ms_p95=0.001)
    params = load_params("params.yaml")
    rejected = run_promote(params)
    code, _out, err = run_cli("promote", "--version", rejected.version, "--force", cwd=trained_copy)
    assert code == 2 and "--reason" in err  # an override without a reason is refused
    code, _out, err = run_cli(
        "promote",
        "--version",
        rejected.version,
        "--force",
        "--reason",
        "hot fix approved by on-call",
        cwd=trained_copy,
    )
    assert code == 0, err
    latest = recent(params.promote.history_db, params.registry.model_name)[0]
    assert latest.decision == "forced" and latest.version == rejected.version
    assert latest.reasons == ["forced by hand: hot fix approved by on-call"]
    assert _aliases(params)["champion"] == rejected.version


def test_status_json_schema(trained_copy):
    params = load_params("params.yaml")
    run_promote(params)
    force_promote(params, run_promote(params).version, "schema test")
    code, out, err = run_cli("status", "--json", cwd=trained_copy)
    assert code == 0, err
    report = json.loads(out)
    assert report["model_name"] == params.registry.model_name
    assert set(report["champion"]) >= {"version", "metrics"}
    assert report["champion"]["metrics"]["auc_floor"] > 0.5  # the holdout AUC it was gated on
    assert "challenger" in report and "previous" in report
    assert [h["decision"] for h in report["history"]] == ["forced", "promoted", "promoted"]
    for entry in report["history"]:
        assert set(entry) >= {"version", "decision", "reasons", "at"}
        assert entry["reasons"] and isinstance(entry["reasons"], list)


def test_two_processes_promoting_at_once_lose_nothing(trained_copy):
    params = load_params("params.yaml")
    stages.distill(params)  # two registered candidates of equal quality: versions 1 and 2
    versions = ["1", "2"]
    racers = [
        subprocess.Popen([sys.executable, "-c", GATE_SCRIPT, v], cwd=trained_copy) for v in versions
    ]
    time.sleep(3)  # both are importing and scoring; release them together
    (trained_copy / "go").touch()
    assert [r.wait(timeout=300) for r in racers] == [0, 0]

    history = list(reversed(recent(params.promote.history_db, params.registry.model_name)))
    assert [d.decision for d in history] == ["promoted", "promoted"]
    first, second = history
    assert first.compared_to is None  # the first saw no champion...
    assert second.compared_to == first.version  # ...and the second saw the first's result
    assert _aliases(params) == {
        "champion": second.version,
        "challenger": None,
        "previous": first.version,
    }
