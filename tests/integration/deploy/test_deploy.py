"""deploy/compose.yaml, checked without Docker: the services the production setup needs, their
start order on health, and the wiring between them (databases, S3, URIs, telemetry, secrets).
Where a compose CLI is installed, `config` validates the file against Compose's own schema."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
TELEMETRY = {"DO_NOT_TRACK", "MLFLOW_DISABLE_TELEMETRY", "PREFECT_SERVER_ANALYTICS_ENABLED"}


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_services_start_in_order_on_health(services):
    assert set(services) == {
        "postgres",
        "minio",
        "minio-init",
        "mlflow",
        "prefect-server",
        "worker",
        "api",
    }
    for name in ("postgres", "minio", "mlflow", "prefect-server", "api"):
        assert services[name]["healthcheck"]["test"], name
    depends = {name: service.get("depends_on", {}) for name, service in services.items()}
    assert depends["minio-init"] == {"minio": {"condition": "service_healthy"}}
    assert depends["mlflow"] == {
        "postgres": {"condition": "service_healthy"},
        "minio-init": {"condition": "service_completed_successfully"},
    }
    assert depends["prefect-server"] == {"postgres": {"condition": "service_healthy"}}
    assert depends["worker"] == {
        "mlflow": {"condition": "service_healthy"},
        "prefect-server": {"condition": "service_healthy"},
    }
    assert depends["api"] == {"mlflow": {"condition": "service_healthy"}}


def test_services_are_wired_to_each_other(services):
    mlflow, prefect, worker = services["mlflow"], services["prefect-server"], services["worker"]
    command = mlflow["command"]
    assert "--serve-artifacts" in command
    assert command[command.index("--artifacts-destination") + 1].startswith("s3://")
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://")
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"].endswith("@postgres:5432/mlflow")
    assert mlflow["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    port = command[command.index("--port") + 1]
    assert worker["environment"]["MLFLOW_TRACKING_URI"] == f"http://mlflow:{port}"
    assert f"mlflow:{port}" in mlflow["environment"]["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    prefect_db = prefect["environment"]["PREFECT_SERVER_DATABASE_CONNECTION_URL"]
    assert prefect_db.endswith("@postgres:5432/prefect")  # its own database, created at init
    assert "CREATE DATABASE prefect" in (DEPLOY / "postgres-init.sql").read_text()
    assert worker["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert worker["command"] == ["loopline", "serve"]
    assert (DEPLOY / mlflow["build"]["dockerfile"].removeprefix("deploy/")).is_file()
    api = services["api"]
    assert api["environment"]["MLFLOW_TRACKING_URI"] == f"http://mlflow:{port}"
    assert api["command"][:2] == ["loopline", "api"] and "/readyz" in str(api["healthcheck"])
    assert api["deploy"]["replicas"] == "${API_REPLICAS:-2}"  # scaled out, no host port
    for name in ("mlflow", "prefect-server", "worker", "api"):
        assert set(services[name]["environment"]) >= TELEMETRY, name
    for service in services.values():  # UIs on the host's loopback only
        assert all(str(p).startswith("127.0.0.1:") for p in service.get("ports", []))


def test_every_variable_comes_from_the_env_example_without_real_secrets():
    used = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert used - {"MINIO_TAG", "MC_TAG"} <= set(example)  # image tags have defaults
    assert all(example[k].startswith("change-me") for k in example if "PASSWORD" in k)


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    plugin = docker and subprocess.run([docker, "compose", "version"], capture_output=True)
    if plugin and plugin.returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_cli_accepts_the_file():
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no `docker compose` or `docker-compose` here; structure checked above")
    checked = subprocess.run(
        [*cli, "-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
