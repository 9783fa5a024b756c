"""The promotion gate, aliases, history, rollback, forced promotion and racing promotions, on a
real MLflow registry (SQLite in tmp) with models trained on the data slice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from helpers import GATE_SCRIPT, run_cli, set_params

from tasks import stages
from tasks.core.config import load_params
from tasks.registry import tracking
from tasks.registry.aliases import PromotionError, alias_version, force_promote, rollback
from tasks.registry.history import recent
from tasks.registry.promote import gate_version, run_promote


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
    assert "auc_vs_champion" in failed  # judged against the champion, not the floors
    assert "auc_floor" not in {c["name"] for c in decision.checks}
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
    assert report["champion"]["metrics"]["holdout_auc"] > 0.5  # the holdout AUC it was gated on
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


@pytest.fixture()
def busy_cores():
    """Every core kept busy by other processes (twice over) until the callable it gives is
    called; that returns the spinners' CPU-seconds and the wall-seconds they ran (the proof
    the machine was busy: the 1-minute load average lags by a minute, and after a heavy test
    it reads the same idle or busy)."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(2 * (os.cpu_count() or 1))
    ]
    started = time.monotonic()
    stopped: list[tuple[float, float]] = []

    def stop() -> tuple[float, float]:
        if not stopped:
            cpu = 0.0
            for spinner in spinners:
                spinner.kill()
                _, _, usage = os.wait4(spinner.pid, 0)
                cpu += usage.ru_utime + usage.ru_stime
            stopped.append((cpu, time.monotonic() - started))
        return stopped[0]

    time.sleep(1.0)  # let the spinners take the cores before measuring
    yield stop
    stop()


def _verdict(params, version, champion) -> tuple[str, set[str], dict[str, float]]:
    from tasks.registry.gate import verdict
    from tasks.registry.promote import judge

    metrics = json.loads((params.evaluate.metrics_dir / "candidate.json").read_text())
    checks = judge(
        params, version, champion, _holdout(params), metrics["artifact_bytes"], None, True
    )
    figures = {c.name: c.value for c in checks}
    return verdict(checks), {c.name for c in checks if not c.passed}, figures


def test_the_verdict_holds_on_a_busy_machine(trained_copy, request):
    """The same candidate and champion judged on an idle machine and with every core busy:
    latency figures grow with the load, the verdict and the failed checks do not."""
    params = load_params("params.yaml")
    champion = run_promote(params).version
    candidate = _register_inverted_student(params)  # clearly worse: rejected either way
    stages.distill(params)  # and an equal one, registered again: promoted either way
    equal = str(
        json.loads((params.evaluate.metrics_dir / "candidate.json").read_text())["registry_version"]
    )
    idle = {v: _verdict(params, v, champion) for v in (candidate, equal)}
    stop_spinning = request.getfixturevalue("busy_cores")
    busy = {v: _verdict(params, v, champion) for v in (candidate, equal)}
    spun_cpu_s, spun_wall_s = stop_spinning()
    for version in (candidate, equal):
        assert busy[version][:2] == idle[version][:2], version
    assert idle[candidate][0] == "rejected" and idle[equal][0] == "promoted"
    # the spinners held at least half of all the cores while the verdicts were timed
    assert spun_cpu_s > 0.5 * spun_wall_s * (os.cpu_count() or 1), (spun_cpu_s, spun_wall_s)


def test_the_same_data_and_seed_register_the_same_variant_and_weights(trained_copy):
    """Distilled twice from scratch (no checkpoint to resume): one variant, one digest."""
    import shutil

    from tasks.core.tags import VARIANT, WEIGHTS_SHA256

    params = load_params("params.yaml")
    registered = []
    for _ in range(2):
        shutil.rmtree(params.distill.checkpoint_dir, ignore_errors=True)
        stages.distill(params)
        version = json.loads((params.evaluate.metrics_dir / "candidate.json").read_text())[
            "registry_version"
        ]
        client = tracking.client(params.tracking)  # this project's store, not a previous one
        tags = client.get_model_version(params.registry.model_name, str(version)).tags
        registered.append((version, tags[VARIANT], tags[WEIGHTS_SHA256]))
    (first, *same_first), (second, *same_second) = registered
    assert second != first and same_first == same_second


def test_a_changed_feature_list_trains_and_gates_normally(trained_copy):
    """A feature dropped from params: the new model trains on the rest and the champion is
    re-scored with its own columns, so the gate compares them as usual."""
    params = load_params("params.yaml")
    champion = run_promote(params).version
    dataset = json.loads(json.dumps(params.model_dump(mode="json", by_alias=True)["dataset"]))
    dataset["features"]["numeric"].remove("visib")
    set_params(trained_copy, "dataset", **dataset)
    rules = {
        k: v for k, v in params.validate_.model_dump(mode="json")["rules"].items() if k != "visib"
    }
    set_params(trained_copy, "validate", rules=rules)
    changed = load_params("params.yaml")
    for stage in ("validate", "train", "evaluate", "distill"):
        stages.STAGES[stage](changed)
    decision = run_promote(changed)
    assert decision.decision in {"promoted", "rejected", "insufficient_evidence"}
    names = {c["name"] for c in decision.checks}
    assert "auc_floor" not in names  # judged against the champion, not as a first model
    holdout_auc = next(c for c in decision.checks if c["name"] == "holdout_auc")
    assert holdout_auc["threshold"] is not None  # the champion's own AUC, beside
    assert decision.compared_to == champion


def test_the_gate_audit_tells_a_right_decision_from_a_wrong_one(trained_copy):
    """Two crafted decisions about the same clearly worse candidate, judged on five labelled
    days after its window: keeping the champion was right, promoting it would have been wrong
    and costs AUC."""
    from tasks.core.tags import WINDOW
    from tasks.registry.audit import audit_decisions, audits
    from tasks.registry.history import Decision, append, locked
    from tasks.simulation.upstream import write_day_batch

    set_params(trained_copy, "promote", audit_days=5)
    params = load_params("params.yaml")
    champion = run_promote(params).version
    worse = _register_inverted_student(params)
    client = mlflow.MlflowClient()
    name = params.registry.model_name
    client.set_model_version_tag(name, worse, WINDOW, "2013-01-01..2013-01-20")
    with locked(params.promote.history_db) as conn:
        for kind, at in (
            ("rejected", "2013-01-21T00:00:00+00:00"),
            ("promoted", "2013-01-21T00:00:01+00:00"),
        ):
            append(conn, Decision(name, worse, kind, ["crafted"], compared_to=champion, at=at))
    assert audit_decisions(params)["pending"] == 2  # no labels for those days yet

    for day in pd.date_range("2013-01-21", "2013-01-26").date:  # labels arrive a day later
        write_day_batch(params, day)
    record = audit_decisions(params)
    assert (record["audited"], record["right"], record["wrong"], record["pending"]) == (2, 1, 1, 0)
    kept, promoted = audits(params)
    assert kept.right and kept.chosen == champion and kept.regret == 0
    assert not promoted.right and promoted.chosen == worse
    assert promoted.regret == pytest.approx(promoted.other_auc - promoted.chosen_auc)
    assert record["regret_total"] == pytest.approx(promoted.regret) and promoted.regret > 0.05
    assert promoted.difference_high < 0 < kept.difference_low  # clear either way
    assert "would have been worse" in kept.sentence()
    assert "promoted and worse" in promoted.sentence()
    assert "beyond the gate's tolerance 0.005: wrong" in promoted.sentence()
    assert audit_decisions(params)["audited"] == 2  # stored once, not judged again

    code, out, err = run_cli("status", cwd=trained_copy)
    assert code == 0, err
    assert "gate record: 2 decisions audited, 1 right (0 within the gate's AUC tolerance)" in out
    assert "1 wrong" in out


def test_a_failing_stage_under_dvc_ends_the_training_parent_run_failed(trained_copy):
    """`dvc repro` runs each stage as its own `loopline stage` process, with no flow to close
    the training's parent run: the stage that fails ends it FAILED, never left RUNNING."""
    from tasks.core.layout import CANDIDATE, metrics_file
    from tasks.data.split import TrainingRecord

    params = load_params("params.yaml")
    parent = TrainingRecord.load(params.train.model_dir).parent_run_id
    client = tracking.client(params.tracking)
    assert client.get_run(parent).info.status == "RUNNING"  # distilled, not yet gated
    metrics_file(params.evaluate.metrics_dir, CANDIDATE).unlink()  # the gate has no candidate

    code, _, err = run_cli("stage", "promote")
    assert code != 0 and "Traceback" not in err
    assert client.get_run(parent).info.status == "FAILED"
