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
PIPELINE_FILES = ["dvc.yaml", ".dvcignore", ".gitignore", ".dvc/config", "tasks", "flows"]


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
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")  # tracked, as in the repo
    git = ["git", "-c", "user.name=loopline", "-c", "user.email=loopline@localhost"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "pipeline"], cwd=tmp_path, check=True)
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
    _one_training_run(dvc_repo)

    second = _dvc(dvc_repo, "repro")
    assert "Running stage" not in second
    assert "Data and pipelines are up to date" in second

    _commit(dvc_repo, "first model")  # git keeps the numbers-only metrics and the plots

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
    assert files["reports/validation/numbers/features.json"]["data"]["max_bad_fraction"] == 0.05
    for model in ("teacher", "baseline", "student", "student_int8", "student_pruned"):
        assert 0.0 < files[f"reports/metrics/numbers/{model}.json"]["data"]["roc_auc"] <= 1.0
    for name, data in files.items():  # numbers only: no selection, actor, fingerprint, time
        assert _numbers_only(data["data"]), name
    # the registered variant is the one promote.select chose, and the frontier marks it
    candidate = json.loads((dvc_repo / "reports/metrics/candidate.json").read_text())
    frontier = json.loads((dvc_repo / "reports" / "metrics" / "frontier.json").read_text())
    assert [r["variant"] for r in frontier if r["selected"]] == [candidate["variant"]]

    # History: the metrics of two commits side by side, and the plots of both, offline.
    _commit(dvc_repo, "stricter validation")
    diff = json.loads(_dvc(dvc_repo, "metrics", "diff", "HEAD~1", "--json"))
    change = diff["reports/validation/numbers/features.json"]["max_bad_fraction"]
    assert change["old"] == params_before_max_bad(dvc_repo) and change["new"] == 0.05
    _dvc(dvc_repo, "plots", "diff", "HEAD~1", "-o", "plots_diff")
    page = (dvc_repo / "plots_diff" / "index.html").read_text()
    assert "<img" in page and "frontier.png" in page and "vega" not in page.lower()


def params_before_max_bad(root: Path) -> float:
    """validate.max_bad_fraction as the first commit had it."""
    shown = subprocess.run(
        ["git", "show", "HEAD~1:params.yaml"], cwd=root, capture_output=True, text=True, check=True
    )
    return yaml.safe_load(shown.stdout)["validate"]["max_bad_fraction"]


def _numbers_only(data: dict) -> bool:
    return all(
        _numbers_only(v) if isinstance(v, dict) else isinstance(v, int | float)
        for v in data.values()
    )


def _commit(root: Path, message: str) -> None:
    git = ["git", "-c", "user.name=loopline", "-c", "user.email=loopline@localhost"]
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", message], cwd=root, check=True)


def test_a_loop_retrain_leaves_the_pipeline_to_dvc(dvc_repo):
    """The loop's retrain (the training flow on a later window, as the inline retrain runs
    it) writes under retrain.runs_dir: `dvc status` stays clean and DVC's metrics still
    describe the pipeline's model."""
    _dvc(dvc_repo, "repro")
    before = json.loads(_dvc(dvc_repo, "metrics", "show", "--json"))
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run(
        [str(VENV_BIN / "loopline"), "train", "--until", "2013-01-28"],
        cwd=dvc_repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (dvc_repo / "runs/until-2013-01-28/models/teacher/training.json").is_file()
    assert "Data and pipelines are up to date" in _dvc(dvc_repo, "status")
    assert json.loads(_dvc(dvc_repo, "metrics", "show", "--json")) == before


def _one_training_run(root: Path) -> None:
    """The repro's MLflow runs: one parent open from the train stage to the gate, whose commit
    is clean although `dvc repro` rewrote the tracked dvc.lock, and one dvc.lock hash (recorded
    at the training's start) on every run of the training."""
    import mlflow

    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert (
        subprocess.run(  # dvc.lock did change: the commit is clean by rule, not by luck
            ["git", "diff", "--quiet", "dvc.lock"], cwd=root, check=False
        ).returncode
        == 1
    )
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("loopline-training")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r is not parent]
    assert {r.info.run_name for r in children} == {"teacher", "baseline", "student"}
    assert parent.info.run_name == "train-until-2013-01-31"
    assert parent.info.status == "FINISHED"
    assert parent.info.end_time >= max(r.info.end_time for r in children)
    lock_hash = parent.data.tags["loopline.dvc_lock_hash"]
    for run in [parent, *children]:
        assert run.data.tags["loopline.git_commit"] == sha
        assert run.data.tags["loopline.dvc_lock_hash"] == lock_hash
