"""The distill stage for real on the session's trained project: every variant measured, the
cheapest within tolerance selected, registered and priced."""

from __future__ import annotations

import json

import mlflow
import pytest

from tasks.core.config import load_params
from tasks.model.nets import (
    load_model,
)
from tasks.registry import tracking


def test_distill_measures_selects_and_records_every_variant(trained_copy):
    """The session's real distillation (January 2013 slice): four students, six frontier rows,
    the registered version is the selection, priced from measured seconds."""
    params = load_params("params.yaml")
    metrics_dir = params.evaluate.metrics_dir
    candidate = json.loads((metrics_dir / "candidate.json").read_text())
    frontier = json.loads((metrics_dir / "frontier.json").read_text())

    assert [r["variant"] for r in frontier] == [
        "teacher",
        "baseline",
        "student",
        "student_int8",
        "student_pruned",
        "student_pruned_int8",
    ]
    assert [r["variant"] for r in frontier if r["selected"]] == [candidate["variant"]]
    assert candidate["selection"].startswith(f"{candidate['variant']}: ")
    assert "cheapest among" in candidate["selection"]
    assert any(r["on_frontier"] for r in frontier)
    hourly = params.cost.cpu_hour / 3600
    for row in frontier:
        assert row["cpu_s_per_million"] > 0  # measured, never a constant
        assert row["cost_per_million"] == pytest.approx(row["cpu_s_per_million"] * hourly)
    by_name = {r["variant"]: r for r in frontier}
    assert by_name["student_pruned"]["artifact_bytes"] < by_name["student"]["artifact_bytes"]
    assert by_name["student_pruned"]["parameters"] < by_name["student"]["parameters"]
    student, _ = load_model(params.distill.model_dir)
    pruned, _ = load_model(params.distill.pruned_dir)
    keep = 1 - params.distill.prune.sparsity
    assert pruned.config.hidden == [max(1, round(keep * h)) for h in student.config.hidden]
    assert (params.evaluate.plots_dir / "distill" / "frontier.png").stat().st_size > 0

    tracking.configure(params.tracking)
    version = mlflow.MlflowClient().get_model_version(
        params.registry.model_name, str(candidate["registry_version"])
    )
    assert version.tags["loopline.variant"] == candidate["variant"]
    assert version.tags["loopline.selection"] == candidate["selection"]
    run_id = version.tags["loopline.run_id"]
    assert "selection.json" in {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}
    assert float(version.tags["loopline.cost_per_million"]) == pytest.approx(
        candidate["cost_per_million"], rel=1e-5
    )
    assert float(version.tags["loopline.latency_ms_p95"]) == pytest.approx(
        candidate["latency_ms_p95"], rel=1e-5
    )
