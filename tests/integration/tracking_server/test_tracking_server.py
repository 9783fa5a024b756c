"""loopline against a real MLflow tracking server over HTTP: PostgreSQL as the backend store
(a throwaway cluster from deploy/postgres-dev.sh), artifacts proxied by the server
(`--serve-artifacts`). Training, the promotion gate, checksum-verified loading and nightly
scoring all go through the server; nothing lands in the project's own mlflow/ folder."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from helpers import DAY, set_params

from tasks.core.config import load_params
from tasks.core.errors import ModelIntegrityError
from tasks.core.layout import day_paths
from tasks.simulation.upstream import write_day_batch

REPO = Path(__file__).resolve().parents[3]
POSTGRES_DEV = REPO / "deploy" / "postgres-dev.sh"
INSTALL_HINT = "apt-get install -y --no-install-recommends postgresql"


@dataclass(frozen=True)
class TrackingServer:
    uri: str  # http://127.0.0.1:PORT, what loopline is pointed at
    database: str  # the backend store's SQLAlchemy URI
    artifacts: Path  # the server's --artifacts-destination


def _require_postgres() -> None:
    """Outside CI a machine without PostgreSQL skips, saying how to get it; under CI
    (.ci/run exports LOOPLINE_REQUIRE_POSTGRES=1) a missing PostgreSQL is a failure."""
    if glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"):
        return
    message = f"PostgreSQL binaries missing under /usr/lib/postgresql/*/bin: {INSTALL_HINT}"
    if os.environ.get("LOOPLINE_REQUIRE_POSTGRES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(uri: str, server: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow server exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"mlflow server not healthy after {timeout:.0f} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory) -> Iterator[TrackingServer]:
    """PostgreSQL + `mlflow server` on free loopback ports, always torn down; their logs are
    printed at teardown (pytest shows them when a test failed)."""
    _require_postgres()
    # Under /tmp, not pytest's 0700 tmp dir: the cluster runs as the postgres user.
    cluster = Path(tempfile.mkdtemp(prefix="loopline-pg-"))
    artifacts = tmp_path_factory.mktemp("mlflow-artifacts")
    log = artifacts.parent / "mlflow-server.log"
    server = None
    try:
        started = subprocess.run(
            ["bash", str(POSTGRES_DEV), "start", str(cluster)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert started.returncode == 0, started.stderr
        database = started.stdout.strip().splitlines()[-1]
        port = _free_port()
        with log.open("w") as out:
            server = subprocess.Popen(
                [
                    *(sys.executable, "-m", "mlflow", "server"),
                    *("--backend-store-uri", database),
                    *("--serve-artifacts", "--artifacts-destination", str(artifacts)),
                    *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=os.environ.copy(),  # telemetry off (conftest's go_offline)
            )
        uri = f"http://127.0.0.1:{port}"
        _wait_healthy(uri, server, log)
        yield TrackingServer(uri, database, artifacts)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
            print("--- mlflow server log ---\n" + log.read_text())
        subprocess.run(["bash", str(POSTGRES_DEV), "stop", str(cluster)], timeout=60)
        for name in ("initdb.log", "postgres.log"):
            if (cluster / name).is_file():
                print(f"--- {name} ---\n" + (cluster / name).read_text())
        shutil.rmtree(cluster, ignore_errors=True)


def _count(database: str, table: str, where: str = "TRUE") -> int:
    """Rows of one of MLflow's tables, read from PostgreSQL directly."""
    import psycopg2

    conn = psycopg2.connect(database.replace("postgresql+psycopg2://", "postgresql://"))
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table} WHERE {where}")
            return cursor.fetchone()[0]
    finally:
        conn.close()


def test_train_promote_and_score_over_http(tracking_server, project, prefect_harness, monkeypatch):
    from flows.inference import inference_flow
    from flows.training import training_flow
    from tasks.model.nets import load_model
    from tasks.model.predict import predict_proba
    from tasks.registry.versions import load_registered
    from tasks.training.distill import variant_folders

    server = tracking_server
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # restored (unset) afterwards
    set_params(project, "tracking", uri=server.uri)  # pointed at the server through params
    result = training_flow(params_path="params.yaml")
    params = load_params("params.yaml")
    name = params.registry.model_name
    client = mlflow.MlflowClient(tracking_uri=server.uri, registry_uri=server.uri)

    # Runs, params and metrics are in the server.
    parent = client.get_run(result["parent_run_id"])
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    runs = {run.info.run_name: run for run in children}
    assert set(runs) == {"teacher", "baseline", "student"}
    assert 0.5 < runs["teacher"].data.metrics["test_roc_auc"] <= 1.0
    assert runs["teacher"].data.tags["loopline.data_fingerprint"]
    assert "params.json" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"

    # The flow's lineage artifact links the server's pages of the run and the version.
    from prefect.artifacts import Artifact

    lineage = str(Artifact.get("training-lineage").data)
    base = server.uri.rstrip("/")
    run_page = f"{base}/#/experiments/{parent.info.experiment_id}/runs/{parent.info.run_id}"
    assert f"]({run_page})" in lineage
    assert f"]({base}/#/models/{name}/versions/1)" in lineage

    # The gate ran over HTTP and made version 1 champion.
    assert result["decision"]["decision"] == "promoted", result["decision"]
    champion = client.get_model_version_by_alias(name, "champion")
    assert champion.version == "1" and champion.tags["loopline.decision"] == "promoted"

    # Artifacts went through the server's proxy into its destination, not into the project.
    assert runs["student"].info.artifact_uri.startswith("mlflow-artifacts:/")
    served_weights = list(server.artifacts.rglob("weights.safetensors"))
    assert served_weights, "no model weights under the server's artifacts destination"
    assert not (project / "mlflow" / "artifacts").exists()
    assert not (project / "mlflow" / "mlflow.db").exists()

    # The rows are in PostgreSQL.
    assert _count(server.database, "runs") >= 4  # the parent and its 3 children
    assert _count(server.database, "model_versions") == 2  # the candidate and its teacher
    assert _count(server.database, "registered_model_aliases", "alias = 'champion'") == 1

    # Nightly scoring loads the champion over HTTP (checksums verified) and scores the day.
    write_day_batch(params, DAY)
    summary = inference_flow(date=DAY.isoformat())
    predictions = pd.read_parquet(day_paths(params, DAY)["predictions"])
    incoming = pd.read_parquet(day_paths(params, DAY)["incoming"])
    assert len(predictions) == len(incoming) == summary["scored"]
    assert (predictions["model_version"] == "1").all()
    variant = champion.tags["loopline.variant"]
    local = predict_proba(*load_model(variant_folders(params)[variant]), incoming)
    by_id = predictions.set_index("flight_id").loc[incoming["flight_id"], "score"]
    np.testing.assert_allclose(by_id.to_numpy(), local, atol=1e-6)

    # A weights file altered in the server's store is refused when it comes back over HTTP.
    for path in served_weights:
        path.write_bytes(path.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ModelIntegrityError, match="does not match the checksum"):
        load_registered(params.tracking, name, "1")
