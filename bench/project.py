"""A scratch copy of the project for the benchmarks.

They train, register, promote and run `dvc repro` there, on a copy of your feature table, so
`make bench` never touches your models, registry, Prefect history or DVC state.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import tasks
from tasks.core.config import Params, load_params
from tasks.core.errors import LooplineError
from tasks.core.layout import numbers_file

# Where the copy keeps its own state: a tracking URI or Prefect home set for your real
# project must not leak into the benchmark's runs.
ISOLATED_ENV = {"MLFLOW_TRACKING_URI": None, "PREFECT_HOME": ".prefect"}


@dataclass(frozen=True)
class Scratch:
    root: Path
    params: Params
    params_path: Path


@contextlib.contextmanager
def scratch_project(params_path: Path) -> Iterator[Scratch]:
    """cd into a temp project: params.yaml, dvc.yaml, tasks/ and the ingested features, under
    git + DVC; the directory is removed afterwards."""
    repo = Path.cwd()
    params = load_params(params_path)
    features = repo / params.ingest.features_dir
    if not features.is_dir():
        raise LooplineError(f"{features}: no feature table; run `dvc repro` or `make demo` first")
    with tempfile.TemporaryDirectory(prefix="loopline-bench-") as tmp:
        root = Path(tmp)
        _copy(repo / "dvc.yaml", root / "dvc.yaml")
        _copy(Path(tasks.__file__).parent, root / "tasks")  # dvc.yaml's code deps
        shutil.copy2(params_path, root / "params.yaml")
        _copy(features, root / params.ingest.features_dir)
        for record in (params.ingest.summary_path, numbers_file(params.ingest.summary_path)):
            _copy(repo / record, root / record)  # ingest's outputs: the stage is not re-run
        with _inside(root):
            for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
                subprocess.run(cmd, check=True, capture_output=True)
            yield Scratch(root, load_params("params.yaml"), root / "params.yaml")


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copy2(source, target)


@contextlib.contextmanager
def _inside(root: Path) -> Iterator[None]:
    before = Path.cwd()
    saved = {key: os.environ.get(key) for key in ISOLATED_ENV}
    os.chdir(root)
    for key, value in ISOLATED_ENV.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = str(root / value)
    try:
        yield
    finally:
        os.chdir(before)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
