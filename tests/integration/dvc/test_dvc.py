"""`dvc repro` for real, in a temp git repo holding a copy of the pipeline over a data slice."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers import VENV_BIN, write_params

REPO = Path(__file__).resolve().parents[3]
PIPELINE_FILES = ["dvc.yaml", ".dvcignore", ".dvc/config", "tasks", "flows"]


def _dvc(root: Path, *args: str) -> str:
    # The stages use the repo's own MLflow store: not one an earlier test in this process
    # pointed MLFLOW_TRACKING_URI at (mlflow.set_tracking_uri exports it).
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"
    proc = subprocess.run(
        [str(VENV_BIN / "dvc"), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


@pytest.fixture()
def dvc_repo(tmp_path, base_params_dict, raw_slice_file) -> Path:
    for name in PIPELINE_FILES:
        source, target = REPO / name, tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    write_params(tmp_path, base_params_dict, raw_slice_file)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    return tmp_path


def test_repro_then_noop_then_validate_only(dvc_repo):
    first = _dvc(dvc_repo, "repro")
    for stage in ("ingest", "validate", "train", "evaluate", "distill"):
        assert f"Running stage '{stage}'" in first
    assert (dvc_repo / "data" / "validated").is_dir()
    for variant in ("student_int8", "student_pruned", "student_pruned_int8"):
        assert (dvc_repo / "models" / variant / "weights.safetensors").is_file()
    assert (dvc_repo / "reports" / "validation" / "features.html").is_file()
    assert (dvc_repo / "dvc.lock").is_file()

    second = _dvc(dvc_repo, "repro")
    assert "Running stage" not in second
    assert "Data and pipelines are up to date" in second

    params_path = dvc_repo / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["validate"]["max_bad_fraction"] = 0.05
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    third = _dvc(dvc_repo, "repro")
    assert "Running stage 'validate'" in third
    for stage in ("ingest", "train", "evaluate", "distill"):  # same validated rows: nothing else
        assert f"Running stage '{stage}'" not in third

    metrics = json.loads(_dvc(dvc_repo, "metrics", "show", "--json"))
    files = next(iter(metrics.values()))["data"]
    assert files["reports/validation/features.json"]["data"]["max_bad_fraction"] == 0.05
    for model in ("teacher", "baseline", "student", "student_int8", "student_pruned"):
        assert 0.0 < files[f"reports/metrics/{model}.json"]["data"]["roc_auc"] <= 1.0
    # the registered variant is the one promote.select chose, and the frontier marks it
    candidate = files["reports/metrics/candidate.json"]["data"]
    frontier = json.loads((dvc_repo / "reports" / "metrics" / "frontier.json").read_text())
    assert [r["variant"] for r in frontier if r["selected"]] == [candidate["variant"]]
    plots = json.loads(_dvc(dvc_repo, "plots", "show", "--json"))["data"]
    assert "reports/metrics/frontier.json" in plots
