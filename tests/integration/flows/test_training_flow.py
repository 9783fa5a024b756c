"""The training flow for real: Prefect (test harness), MLflow (SQLite in tmp), GX, torch.

Checks what a user relies on: runs and their lineage, metrics, the registered candidate, and
that the registered model, loaded through MLflow, scores raw features as the saved one does.
"""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import prefect_flow_run, prefect_run_logs

from tasks import stages
from tasks.core.config import load_params
from tasks.core.errors import ConfigError, LooplineError
from tasks.model.nets import load_model
from tasks.model.predict import predict_proba
from tasks.registry import tracking
from tasks.training.distill import variant_folders


def _runs_under(parent_run_id: str) -> dict[str, mlflow.entities.Run]:
    client = mlflow.MlflowClient()
    parent = client.get_run(parent_run_id)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'"
    )
    return {run.info.run_name: run for run in children}


def test_training_flow_end_to_end(project, prefect_harness, feature_slice):
    from prefect.artifacts import Artifact

    from flows.training import training_flow

    state = training_flow(params_path="params.yaml", return_state=True)
    result = state.result()
    params = load_params("params.yaml")
    client = mlflow.MlflowClient()

    experiment = client.get_experiment_by_name(params.tracking.experiment)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"

    runs = _runs_under(result["parent_run_id"])
    assert set(runs) == {"teacher", "baseline", "student"}
    teacher, student = runs["teacher"], runs["student"]
    for run in runs.values():
        tags = run.data.tags
        assert tags["loopline.data_fingerprint"] and len(tags["loopline.params_hash"]) == 16
        assert "loopline.git_commit" in tags
    assert 0.5 < teacher.data.metrics["test_roc_auc"] <= 1.0
    assert "test_roc_auc" in runs["baseline"].data.metrics
    assert {
        "test_roc_auc",
        "test_int8_roc_auc",
        "test_pruned_roc_auc",
        "test_pruned_int8_cost_per_million",
        "test_teacher_agreement",
    } <= set(student.data.metrics)
    history = client.get_metric_history(teacher.info.run_id, "val_log_loss")
    assert [m.step for m in history] == list(range(1, len(history) + 1))
    contexts = {i.tags[0].value for i in teacher.inputs.dataset_inputs}
    assert contexts == {"training", "validation", "testing"}
    artifacts = {a.path for a in client.list_artifacts(student.info.run_id)}
    assert "model_card.md" in artifacts and "plots" in artifacts
    baseline = runs["baseline"]
    assert baseline.data.params["max_iter"] == "30"
    assert "metrics/baseline.json" in {
        a.path for a in client.list_artifacts(baseline.info.run_id, "metrics")
    }

    # The parent: open while the stages ran, closed by the gate; params, data, its product.
    parent = client.get_run(result["parent_run_id"])
    assert parent.info.run_name == "train-until-2013-01-31"
    assert parent.info.status == "FINISHED"
    teacher_took = teacher.info.end_time - teacher.info.start_time
    assert parent.info.start_time <= teacher.info.start_time
    assert parent.info.end_time >= max(r.info.end_time for r in runs.values())
    assert parent.info.end_time - parent.info.start_time >= teacher_took
    assert parent.data.params["train.schedule.max_epochs"] == "4"
    assert parent.data.params["distill.temperature"] == str(params.distill.temperature)
    assert parent.data.params["promote.min_auc"] == "0.55"
    parent_data = {i.tags[0].value: i.dataset.digest for i in parent.inputs.dataset_inputs}
    teacher_data = {i.tags[0].value: i.dataset.digest for i in teacher.inputs.dataset_inputs}
    assert parent_data == teacher_data and len(parent_data) == 3
    assert parent.data.tags["loopline.window"] == "2013-01-01..2013-01-31"
    assert parent.data.tags["loopline.promotion"] == result["decision"]["decision"]
    # one commit and config per training: every stage's run repeats the parent's
    for run in runs.values():
        for key in ("loopline.git_commit", "loopline.params_hash"):
            assert run.data.tags[key] == parent.data.tags[key]

    (version,) = client.search_model_versions(f"name='{params.registry.model_name}'")
    tags = version.tags
    # the variant promote.select chose, as recorded for the gate
    candidate = json.loads((params.evaluate.metrics_dir / "candidate.json").read_text())
    assert tags["loopline.variant"] == candidate["variant"]
    assert tags["loopline.selection"] == candidate["selection"]
    assert tags["loopline.run_id"] == student.info.run_id
    assert tags["loopline.teacher_version"] == "1"
    assert tags["loopline.teacher_run_id"] == teacher.info.run_id
    assert tags["loopline.data_fingerprint"] == teacher.data.tags["loopline.data_fingerprint"]
    # parent → version: a tag and a link in its description
    assert parent.data.tags["loopline.model_version"] == str(version.version)
    note = parent.data.tags["mlflow.note.content"]
    assert f"#/models/{params.registry.model_name}/versions/{version.version}" in note
    # version → its source run → the data it was trained and tested on
    source = client.get_run(version.run_id)
    assert {i.tags[0].value: i.dataset.digest for i in source.inputs.dataset_inputs} == (
        teacher_data
    )
    # descriptions: what the version is, its window, variant and the gate's verdict
    verdict = "promoted to champion" if result["result"] == "promoted" else "not promoted"
    description = client.get_model_version(version.name, version.version).description
    assert candidate["variant"] in description and "2013-01-01..2013-01-31" in description
    assert description.splitlines()[-1].startswith(f"Gate verdict: **{verdict}")
    assert version.run_id in description
    assert "champion" in client.get_registered_model(params.registry.model_name).description
    (teacher_version,) = client.search_model_versions(
        f"name='{params.registry.teacher_model_name}'"
    )
    assert teacher_version.tags["loopline.run_id"] == teacher.info.run_id

    raw = feature_slice.tail(64)[params.dataset.features.names].reset_index(drop=True)
    served = mlflow.pyfunc.load_model(f"models:/{params.registry.model_name}/{version.version}")
    scores = served.predict(raw)["score"].to_numpy()
    local = predict_proba(*load_model(variant_folders(params)[candidate["variant"]]), raw)
    np.testing.assert_allclose(scores, local, atol=1e-6)
    assert ((scores > 0) & (scores < 1)).all()

    table = Artifact.get("training-metrics")
    assert table is not None and "student_int8" in str(table.data)

    # The first candidate is gated on absolute floors; the flow completes either way.
    decision = result["decision"]
    assert result["result"] == (
        "promoted" if decision["decision"] == "promoted" else "not promoted"
    )
    assert {c["name"] for c in decision["checks"]} >= {"validation", "auc_floor", "latency_p95"}
    assert Artifact.get("promotion-decision") is not None

    # Prefect: the run says what ran, how it ended, and carries loopline's own log lines.
    flow_run = prefect_flow_run(state.state_details.flow_run_id)
    assert flow_run.name == "train-until-2013-01-31"
    assert {"flight-delay", "until:2013-01-31", "trigger:manual"} <= set(flow_run.tags)
    assert flow_run.state.is_completed()
    assert flow_run.state.message.startswith(f"flight-delay v{version.version} {verdict}")
    logs = prefect_run_logs(flow_run.id, expect="promote: flight-delay")
    assert any(m.startswith("teacher: ") and "best epoch" in m for m in logs), logs
    assert any(m.startswith("evaluate: teacher AUC") for m in logs)
    assert any(m.startswith(f"promote: flight-delay v{version.version}") for m in logs)
    assert sum(m.startswith("teacher: ") for m in logs) == 1  # each line once
    lineage = Artifact.get("training-lineage")
    assert result["parent_run_id"] in str(lineage.data)


def test_single_class_window_fails_clearly_and_registers_nothing(
    project, prefect_harness, base_params_dict
):
    from flows.training import training_flow

    params_path = project / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["dataset"]["target"]["value"] = 100000  # nobody is that late: one class only
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))

    # Caught at ingest, by the volume ingest measures: no month has a late flight.
    with pytest.raises(ConfigError, match=r"no positive flights in 2013-01: .*dataset.target"):
        training_flow(params_path="params.yaml")
    loaded = load_params("params.yaml")
    registry = loaded.registry
    # This project's store: the flow stopped before it opened one for this process.
    names = {m.name for m in tracking.client(loaded.tracking).search_registered_models()}
    assert registry.model_name not in names and registry.teacher_model_name not in names


def test_empty_training_window_is_a_clear_error(project):
    params_path = project / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["train"]["window"] = {"start": "2013-06-01", "end": "2013-06-20"}
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    p = load_params(params_path)
    stages.ingest(p)
    stages.validate(p)
    with pytest.raises(LooplineError, match=r"train split 2013-06-01\.\.2013-06-13 has no rows"):
        stages.train(p)
    assert not (p.train.model_dir / "weights.safetensors").exists()


def test_a_refused_candidate_completes_saying_why(project, prefect_harness, feature_slice):
    """A gate that says no: the run ends Completed, its message names the failed check, the
    version's description carries the verdict. And the registered pyfunc (a challenger
    scores in shadow) refuses a frame without a feature column, naming it."""
    from flows.training import training_flow

    params_path = project / "params.yaml"
    config = yaml.safe_load(params_path.read_text())
    config["promote"]["min_auc"] = 0.99  # no model of a January reaches it
    params_path.write_text(yaml.safe_dump(config, sort_keys=False))

    state = training_flow(params_path="params.yaml", return_state=True)
    assert state.result()["result"] == "not promoted"
    flow_run = prefect_flow_run(state.state_details.flow_run_id)
    assert flow_run.state.is_completed()
    message = flow_run.state.message
    assert message.startswith("flight-delay v1 not promoted (challenger): auc_floor: ")
    assert "vs floor 0.99" in message
    description = mlflow.MlflowClient().get_model_version("flight-delay", "1").description
    assert description.splitlines()[-1].startswith("Gate verdict: **not promoted (challenger)**")
    assert "vs floor 0.99" in description

    served = mlflow.pyfunc.load_model("models:/flight-delay/1")
    frame = feature_slice.head(5).drop(columns=["distance"])
    with pytest.raises(Exception, match="distance"):
        served.predict(pd.DataFrame(frame))
