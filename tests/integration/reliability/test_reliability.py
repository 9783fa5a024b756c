"""Issue 7 on the real stack: crashes (SIGKILL to real `loopline` processes), a corrupted model,
transient store faults (a real SQLite lock, a real refused connection), concurrent runs and the
security checks. MLflow on SQLite in tmp, Prefect through the session's test server."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from helpers import DAY, GATE_SCRIPT, register_again, run_cli, set_params, spawn_cli
from safetensors.torch import load_file

from tasks.core.config import load_params
from tasks.core.errors import LooplineError, ModelIntegrityError, TrackingStoreError
from tasks.core.layout import CHECKPOINT, FEATURIZER_FILE, WEIGHTS_FILE, day_lock, day_paths
from tasks.core.tags import CHAMPION, PREVIOUS
from tasks.model.predict import predict_proba
from tasks.registry.aliases import alias_version, registry_client
from tasks.registry.history import recent
from tasks.registry.versions import CHECKSUM_TAGS
from tasks.serving.champion import resolve_champion
from tasks.serving.nightly import score_day

REPO = Path(__file__).resolve().parents[3]

# Holds an exclusive lock on the SQLite file argv[1] for argv[2] seconds, as another writer would.
HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


@pytest.fixture()
def prefect_api(prefect_harness, monkeypatch):
    """Child `loopline` processes use the session's Prefect test server (no server each)."""
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 120) -> None:
    """Poll `condition` while `proc` runs; fail if it ends first (the kill would prove nothing)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"ended before the kill point: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "kill point never reached"
        time.sleep(0.001)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _champion(params) -> str | None:
    return alias_version(registry_client(params), params.registry.model_name, CHAMPION)


def _stored_model(params, version: str) -> Path:
    """Where the artifact store keeps a registered version's files."""
    tags = registry_client(params).get_model_version(params.registry.model_name, version).tags
    model_id = tags["loopline.model_uri"].removeprefix("models:/")
    return Path(mlflow.get_logged_model(model_id).artifact_location.removeprefix("file://"))


@pytest.fixture()
def stored_v1(serving, tmp_path):
    """Version 1's files in the artifact store, put back afterwards: copies of the trained
    project share the session's artifact store."""
    root = _stored_model(serving, "1")
    backup = tmp_path / "stored-v1"
    shutil.copytree(root, backup)
    yield root
    shutil.rmtree(root)
    shutil.copytree(backup, root)


# --- crashes -----------------------------------------------------------------------------------


def test_training_killed_after_a_checkpoint_resumes_to_the_uninterrupted_weights(trained_copy):
    params = load_params("params.yaml")
    weights = params.train.model_dir / WEIGHTS_FILE
    uninterrupted = load_file(str(weights))  # what the fixture's uninterrupted run saved
    weights.unlink()
    checkpoint = params.train.checkpoint_dir / CHECKPOINT
    proc = spawn_cli("stage", "train", cwd=trained_copy)
    _wait_for(checkpoint.exists, proc)  # the first epoch is done
    _kill(proc)
    assert checkpoint.exists() and not weights.exists()

    code, out, err = run_cli("stage", "train", cwd=trained_copy)
    assert code == 0, err
    assert re.search(r"teacher: resuming after epoch [1-9]", out + err)
    resumed = load_file(str(weights))
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)
    assert not checkpoint.exists()


def _bigger_batch(params, copies: int) -> int:
    """The day's batch repeated with fresh ids, so writing its predictions takes a while."""
    path = day_paths(params, DAY)["incoming"]
    day = pd.read_parquet(path)
    big = pd.concat([day] * copies, ignore_index=True)
    big["flight_id"] = np.arange(len(big)) + 10_000_000
    big.to_parquet(path, index=False)
    return len(big)


def test_scoring_killed_mid_write_leaves_no_partial_file_and_a_rerun_completes(
    serving, prefect_api
):
    from flows.inference import inference_flow

    rows = _bigger_batch(serving, 10)
    predictions = day_paths(serving, DAY)["predictions"]
    folder = predictions.parent

    def writing() -> bool:  # the first file there is the write's temp file
        return folder.is_dir() and any(folder.iterdir())

    proc = spawn_cli("score", "--date", DAY.isoformat())
    _wait_for(writing, proc)
    _kill(proc)
    # Killed mid-write: no predictions, or (killed just after the rename) complete ones.
    assert not predictions.exists() or len(pd.read_parquet(predictions)) == rows

    assert inference_flow(date=DAY.isoformat())["scored"] == rows  # the rerun
    assert len(pd.read_parquet(predictions)) == rows
    assert sorted(p.name for p in folder.iterdir()) == [predictions.name]  # no temp, no lock


def _lock_held(db: Path) -> bool:
    conn = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()


def test_promotion_killed_inside_its_lock_leaves_one_loadable_champion(serving, trained_copy):
    history = serving.promote.history_db
    second = register_again(serving)
    (trained_copy / "go").touch()
    gate = [sys.executable, "-c", GATE_SCRIPT, second]
    proc = subprocess.Popen(gate, cwd=trained_copy, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(lambda: history.exists() and _lock_held(history), proc)  # deciding
    _kill(proc)

    assert not _lock_held(history)  # the kernel released it with the process
    champion = resolve_champion(serving)  # exactly one, complete and verified
    assert champion.version in {"1", second}
    assert len(recent(history, serving.registry.model_name)) in {1, 2}

    assert subprocess.run(gate, cwd=trained_copy, timeout=300).returncode == 0  # the rerun
    assert _champion(serving) == second, recent(history, serving.registry.model_name)
    assert alias_version(registry_client(serving), "flight-delay", PREVIOUS) == "1"
    assert recent(history, serving.registry.model_name)[0].decision == "promoted"


@pytest.mark.parametrize("damaged", [WEIGHTS_FILE, FEATURIZER_FILE])
def test_a_corrupted_registered_model_is_refused_and_nothing_changes(serving, stored_v1, damaged):
    (stored,) = stored_v1.rglob(damaged)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    stored.write_bytes(bytes(data))
    expected = (
        registry_client(serving).get_model_version("flight-delay", "1").tags[CHECKSUM_TAGS[damaged]]
    )

    with pytest.raises(ModelIntegrityError) as raised:
        score_day(serving, DAY)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"flight-delay v1: {damaged} does not match the checksum")
    assert expected[:12] in message and "not loaded" in message
    assert not day_paths(serving, DAY)["predictions"].exists()
    assert _champion(serving) == "1"


def test_registered_models_load_without_pickle_or_stored_code(serving, stored_v1):
    """What the artifact store holds is data to us: its code copies never run, nothing in it is
    a pickle, and a poisoned training checkpoint is refused by torch's weights-only loader."""
    from tasks.training.checkpoint import resume

    stored_code = list(stored_v1.rglob("*.py"))
    assert len(stored_code) > 10  # pyfunc_model.py and the copy of tasks/
    for path in stored_code:
        path.write_text("raise SystemExit('code from the artifact store ran')\n")
    champion = resolve_champion(serving)
    assert champion.version == "1"
    folder = next(stored_v1.rglob(WEIGHTS_FILE)).parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(CHECKSUM_TAGS)

    marker = Path("pwned")

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    checkpoint = Path("checkpoint.pt")
    torch.save({"key": "k", "payload": Payload()}, checkpoint)
    net = torch.nn.Linear(2, 1)
    assert resume(checkpoint, "k", net, torch.optim.Adam(net.parameters())) is None
    assert not marker.exists()


# --- transient faults --------------------------------------------------------------------------


def test_a_locked_store_is_retried_with_backoff_until_it_frees(serving, caplog):
    db = Path(serving.tracking.uri.removeprefix("sqlite:///")).resolve()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db), "21"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    fast = serving.tracking.model_copy(update={"retries": 2, "backoff_seconds": 0.5})
    params = serving.model_copy(update={"tracking": fast})
    started = time.monotonic()
    try:
        champion = resolve_champion(params)  # SQLite waits 20 s, then our retry gets through
    finally:
        holder.kill()
        holder.wait()
    assert champion.version == "1"
    assert time.monotonic() - started > 20
    assert "database is locked); retry 1 of 2 in 0.5 s" in caplog.text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_store_fails_with_one_clear_line_after_backoff(trained_copy, monkeypatch):
    uri = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # how production points at its server
    monkeypatch.setenv("COLUMNS", "400")  # log lines unwrapped
    set_params(trained_copy, "tracking", retries=2, backoff_seconds=0.25)
    started = time.monotonic()
    code, out, err = run_cli("status", cwd=trained_copy)
    assert code == TrackingStoreError.exit_code
    assert time.monotonic() - started > 0.75  # 0.25 + 0.5 s of backoff
    assert "retry 1 of 2 in 0.2" in out and "retry 2 of 2 in 0.5" in out
    assert err.count("\n") == 1 and err.startswith(f"loopline: error: MLflow store {uri}: ")
    assert "failed 3 times" in err and "Connection refused" in err


def test_a_restored_uri_of_our_own_is_not_a_user_override(tmp_path, monkeypatch):
    """configure() exports MLFLOW_TRACKING_URI (MLflow does); when an older value it exported
    comes back (a test's monkeypatch restores it), the params' store still wins, while a URI
    the user set is still obeyed."""
    from tasks.core.config import TrackingConfig
    from tasks.registry.tracking import configure

    def store(name: str) -> TrackingConfig:
        return TrackingConfig(
            uri=f"sqlite:///{tmp_path / name}.db",
            artifact_root=tmp_path / name,
            experiment="x",
            retries=0,
            backoff_seconds=1,
        )

    first = configure(store("first"))
    configure(store("second"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", first)  # an old value of ours, restored
    assert configure(store("third")) == f"sqlite:///{tmp_path / 'third'}.db"
    users = f"sqlite:///{tmp_path / 'users'}.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", users)
    assert configure(store("fourth")) == users


def test_prefect_io_tasks_retry_transient_store_faults_only(prefect_harness, monkeypatch):
    from mlflow.exceptions import MlflowException
    from prefect import flow, task

    from flows.common import IO_RETRIES

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # as tracking.configure sets it
    attempts: list[str] = []
    unreachable = f"http://127.0.0.1:{_free_port()}"

    @task(**{**IO_RETRIES, "retry_delay_seconds": 0})
    def read_store(kind: str) -> None:
        attempts.append(kind)
        if kind == "refused":  # a real refused connection, as MLflow raises it
            mlflow.MlflowClient(tracking_uri=unreachable).search_experiments()
        raise LooplineError("a data error: the same input fails the same way")

    @flow
    def probe(kind: str) -> None:
        read_store(kind)

    with pytest.raises(MlflowException, match="Connection refused"):
        probe("refused")
    with pytest.raises(LooplineError, match="a data error"):
        probe("data")
    assert attempts.count("refused") == 1 + IO_RETRIES["retries"]
    assert attempts.count("data") == 1


# --- concurrency -------------------------------------------------------------------------------


def test_two_scores_of_the_same_day_at_once_end_as_one_run(serving, prefect_api):
    predictions = day_paths(serving, DAY)["predictions"]
    score_day(serving, DAY)
    single = pd.read_parquet(predictions).drop(columns="scored_at")

    racers = [spawn_cli("score", "--date", DAY.isoformat()) for _ in range(2)]
    outputs = [r.communicate(timeout=300) for r in racers]
    assert [r.returncode for r in racers] == [0, 0], outputs

    both = pd.read_parquet(predictions).drop(columns="scored_at")
    pd.testing.assert_frame_equal(both, single)
    experiment = mlflow.get_experiment_by_name(serving.drift.experiment)
    runs = mlflow.search_runs(
        [experiment.experiment_id], f"tags.`loopline.date` = '{DAY}'", output_format="list"
    )
    assert len(runs) == 1  # one monitoring run for the day, updated by the second scorer
    assert sorted(p.name for p in predictions.parent.iterdir()) == [predictions.name]
    assert day_lock(serving, DAY).exists()  # the lock lives apart, in score.lock_dir


# Registers version 1's files again and makes the new version champion, twice.
PROMOTER = f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from helpers import register_again
from tasks.core.config import load_params
from tasks.registry.aliases import force_promote
params = load_params("params.yaml")
for round in range(2):
    force_promote(params, register_again(params), "concurrency test")
"""


def test_scoring_always_loads_a_complete_champion_while_others_register_and_promote(
    serving, trained_copy
):
    incoming = day_paths(serving, DAY)["incoming"]
    rows = pd.read_parquet(incoming)
    first = resolve_champion(serving)
    expected = predict_proba(first.model, first.featurizer, rows)
    promoter = subprocess.Popen([sys.executable, "-c", PROMOTER], cwd=trained_copy)
    seen = []
    while promoter.poll() is None:
        champion = resolve_champion(serving)  # checksums verified on every load
        np.testing.assert_allclose(
            predict_proba(champion.model, champion.featurizer, rows), expected, atol=1e-6
        )
        seen.append(champion.version)
    assert promoter.returncode == 0
    assert _champion(serving) == "3"
    assert len(seen) > 3 and set(seen) <= {"1", "2", "3"}


# --- security ----------------------------------------------------------------------------------


def test_servers_bind_loopback_by_default():
    from prefect.settings import PREFECT_RUNNER_SERVER_ENABLE, PREFECT_SERVER_API_HOST

    ui = re.search(r"^ui:.*?(?=^\S)", (REPO / "Makefile").read_text(), re.M | re.S).group(0)
    servers = re.findall(r"(?:prefect server start|mlflow (?:ui|server))[^;&\n]*", ui)
    assert len(servers) == 2
    assert all("--host 127.0.0.1" in s for s in servers), servers
    assert PREFECT_SERVER_API_HOST.value() == "127.0.0.1"  # the ephemeral server
    assert PREFECT_RUNNER_SERVER_ENABLE.value() is False  # `loopline serve` opens no port


SECRET_PATTERNS = {
    "AWS access key": r"AKIA[0-9A-Z]{16}",
    "private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    # a literal password, not a ${VAR} the deployment fills in from its untracked .env
    "credentials in a URL": r"[a-z+]+://[^/\s:@'\"]+:(?!\$\{)[^/\s@'\"]+@",
    "assigned secret": r"(?i)(password|secret|token|api_?key)\s*[:=]\s*['\"][^'\"\s]{8,}['\"]",
}


@pytest.mark.parametrize(
    ("text", "leaks"),
    [
        ("postgresql://mlflow:" + "hunter2hunter2@db:5432/mlflow", True),  # split: not a leak here
        ("postgresql+psycopg2://${POSTGRES_USER}:${POSTGRES_PASSWORD}@postgres:5432/mlflow", False),
        ("http://127.0.0.1:5000", False),
    ],
)
def test_credentials_in_a_url_are_literal_passwords_only(text, leaks):
    assert bool(re.search(SECRET_PATTERNS["credentials in a URL"], text)) is leaks


def test_no_secrets_in_tracked_files():
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    found = []
    for name in files:
        path = REPO / name
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        text = path.read_text(errors="ignore")
        found += [f"{name}: {kind}" for kind, rx in SECRET_PATTERNS.items() if re.search(rx, text)]
    assert len(files) > 50 and found == []
