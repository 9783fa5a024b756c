"""Nightly scoring fanned out over Dask (prefect-dask, a LocalCluster of worker processes)
against a real `prefect server start`: the same predictions as the local runner, and the
backfill's and the runner's every mistake refused in one line before any work starts."""

from __future__ import annotations

import copy
import datetime as dt
import time

import httpx
import pandas as pd
import pytest
import yaml
from helpers import DAY, run_cli, set_params

from tasks.core.config import load_params
from tasks.core.errors import ConfigError
from tasks.core.layout import day_paths
from tasks.simulation.upstream import write_day_batch

DAYS = [DAY - dt.timedelta(days=n) for n in (2, 1, 0)]  # three days of the test window
FIRST, LAST = DAYS[0].isoformat(), DAYS[-1].isoformat()


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory) -> str:
    """A real Prefect server for this module (not the ephemeral one: see
    docs/operations.md#prefect-start-up)."""
    from harness.prefect_server import prefect_server

    with prefect_server(tmp_path_factory.mktemp("prefect-server")) as url:
        yield url


def _predictions(params) -> pd.DataFrame:
    frames = [pd.read_parquet(day_paths(params, d)["predictions"]) for d in DAYS]
    return pd.concat(frames, ignore_index=True).drop(columns="scored_at")


def _last_flow_run(api: str) -> tuple[dict, list[str], list[dict]]:
    """The latest flow run, its log messages and its `score-batch` task runs, from the API
    (the server records task runs from events: waited for, up to a minute)."""
    with httpx.Client(base_url=api, timeout=30) as http:
        run = http.post("/flow_runs/filter", json={"sort": "START_TIME_DESC", "limit": 1}).json()[0]
        ids = {"flow_run_id": {"any_": [run["id"]]}}
        logs = http.post("/logs/filter", json={"logs": ids, "limit": 200}).json()
        for _ in range(120):
            tasks = http.post("/task_runs/filter", json={"task_runs": ids, "limit": 200}).json()
            scored = [t for t in tasks if t["name"].startswith("score-batch")]
            if len(scored) >= len(DAYS) and all(t["state_type"] == "COMPLETED" for t in scored):
                break
            time.sleep(0.5)
    return run, [entry["message"] for entry in logs], scored


def test_dask_backfill_scores_exactly_as_local(trained_copy, prefect_api, monkeypatch):
    """Both runs are the CLI against the module's server: a run in this process would leave
    Prefect's log and event workers holding that server's address after it stops."""
    from tasks.registry.promote import run_promote

    params = load_params("params.yaml")
    assert run_promote(params).decision == "promoted"
    for day in DAYS:
        write_day_batch(params, day)
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    code, out, err = run_cli("score", "--start", FIRST, "--end", LAST, cwd=trained_copy)
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith(f"{FIRST}..{LAST}: 3 days, ")
    assert "(local)" in out, out
    local = _predictions(params)

    set_params(trained_copy, "score", runner="dask")  # the shipped LocalCluster of 2 workers
    code, out, err = run_cli("score", "--start", FIRST, "--end", LAST, cwd=trained_copy)
    assert code == 0, err
    line = out.strip().splitlines()[-1]
    assert line.startswith(f"{FIRST}..{LAST}: 3 days, ") and "(dask at tcp://127.0.0.1:" in line
    assert ": 2 workers, 2 threads)" in line, out
    on_dask = _predictions(params)

    assert len(local) == sum(len(pd.read_parquet(day_paths(params, d)["incoming"])) for d in DAYS)
    pd.testing.assert_frame_equal(on_dask, local, check_exact=False, atol=1e-6, rtol=0)
    assert (on_dask["flight_id"] == local["flight_id"]).all()

    run, messages, scored = _last_flow_run(prefect_api)
    assert run["state_type"] == "COMPLETED"
    assert any(m.startswith("scoring 3 day(s) on dask at tcp://") for m in messages), messages
    assert len(scored) == 3 and {t["state_type"] for t in scored} == {"COMPLETED"}


def test_dask_without_a_prefect_server_says_what_to_do(trained_copy, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    write_day_batch(load_params("params.yaml"), DAY)  # the batch is there: only the server lacks
    set_params(trained_copy, "score", runner="dask")
    code, _, err = run_cli("score", "--date", DAY.isoformat(), cwd=trained_copy)
    assert code == 1
    assert err.count("\n") == 1 and "score.runner: dask needs a Prefect server" in err
    assert "PREFECT_API_URL" in err and not (trained_copy / "data" / "predictions").exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--start", LAST, "--end", FIRST), 2, f"--start {LAST} is after --end {FIRST}; swap"),
        (("--date", LAST, "--end", FIRST), 2, f"--date {LAST} and --end {FIRST} disagree"),
        (("--start", FIRST), 2, "give --date DAY, or --start FIRST --end LAST"),
        (("--start", FIRST, "--end", LAST), 1, f"no batch file for 2 of 3 days ({FIRST}, "),
    ],
    ids=["reversed", "disagree", "no-end", "missing-days"],
)
def test_bad_backfill_range_is_one_line(project, base_params_dict, args, code, message):
    params = load_params("params.yaml")
    path = day_paths(params, DAY)["incoming"]  # the last day is there, the other two not
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    got, _, err = run_cli("score", *args, cwd=project)
    assert (got, err.count("\n")) == (code, 1), err
    assert err.startswith("loopline: error:") and message in err


@pytest.mark.parametrize(
    ("dask", "message"),
    [
        ({"address": "localhost"}, "score.dask: Value error, address 'localhost' is not a "),
        ({"address": "tcp://host:8786/x"}, "expected tcp://HOST:PORT"),
        ({"workers": 0}, "score.dask.workers: Input should be greater than or equal to 1"),
        ({"threads_per_worker": "two"}, "score.dask.threads_per_worker: Input should be a valid"),
        ({"cores": 2}, "score.dask.cores: unknown key (allowed: address, workers, threads_"),
    ],
)
def test_bad_dask_config_is_one_line(base_params_dict, tmp_path, dask, message):
    params = copy.deepcopy(base_params_dict)
    params["score"]["dask"] = {**params["score"]["dask"], **dask}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError) as raised:
        load_params(path)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_scheduler_address_is_accepted(base_params_dict, tmp_path):
    params = copy.deepcopy(base_params_dict)
    params["score"] = {**params["score"], "runner": "dask"}
    params["score"]["dask"] = {**params["score"]["dask"], "address": "tcp://10.0.0.5:8786"}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    assert load_params(path).score.dask.address == "tcp://10.0.0.5:8786"
