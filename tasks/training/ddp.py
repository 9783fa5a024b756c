"""The teacher trained data-parallel: DistributedDataParallel on `train.nproc` processes.

The stage starts `python -m torch.distributed.run --standalone` as a subprocess, rather than
torch's launcher API in-process: the stage may run in a Prefect task's worker thread, where the
elastic agent cannot install its signal handlers, and the agent's logging and process-group
state would leak into the caller. Each rank runs `tasks.training.ddp_worker`, which calls the
very same `train_teacher` as the one-process path with its `Distributed` place (gloo on CPU,
nccl when CUDA is available). torchrun stops the other ranks as soon as one exits with an error;
a rank that hangs instead makes the others fail after `train.ddp_timeout_s`, so the stage never
waits forever. Either way the stage raises one DistributedTrainingError naming the rank and the
log.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tasks.core.config import Params, TrainConfig
from tasks.core.errors import DistributedTrainingError

log = logging.getLogger(__name__)

FAILED = "loopline-rank-failed:"  # how a rank reports its own error in the log, on one line
LOG_DIR = "ddp-logs"
LOG_FILE = "torchrun.log"
PARAMS_FILE = "params.json"
# torchrun's summary of the first failed process (one that died without reporting, e.g. killed)
ROOT_CAUSE = re.compile(r"rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)", re.S)


def launch(params: Params, until: dt.date | None, parent_run_id: str | None) -> None:
    """Train the teacher on `train.nproc` processes; return once rank 0 wrote the model folder
    and training.json. The ranks' log stays (beside the checkpoint) only when something failed."""
    cfg = params.train
    logs = cfg.checkpoint_dir / LOG_DIR
    shutil.rmtree(logs, ignore_errors=True)  # one run's log only: the last one's
    logs.mkdir(parents=True)
    (logs / PARAMS_FILE).write_text(params.model_dump_json(by_alias=True), encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={cfg.nproc}",
        "--max-restarts=0",
        "-m",
        "tasks.training.ddp_worker",
        str(logs / PARAMS_FILE),
        *(["--until", until.isoformat()] if until else []),
        *(["--parent-run-id", parent_run_id] if parent_run_id else []),
    ]
    # The ranks import this very code (not another install of it) and share train.threads.
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = {
        # cuBLAS refuses deterministic algorithms (seed_everything) without a fixed workspace
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
        **os.environ,
        "PYTHONPATH": path,
        "OMP_NUM_THREADS": str(rank_threads(cfg)),
    }
    log.info("teacher: DDP on %d processes under torchrun (logs: %s)", cfg.nproc, logs)
    with (logs / LOG_FILE).open("w", encoding="utf-8") as stderr:
        code = subprocess.run(command, stderr=stderr, env=env, check=False).returncode
    if code != 0:
        raise DistributedTrainingError(failure(logs / LOG_FILE, code, cfg.nproc))
    shutil.rmtree(logs, ignore_errors=True)


def failure(log_path: Path, code: int, nproc: int) -> str:
    """One line: which rank failed and how, from the rank's own report or torchrun's summary."""
    text = log_path.read_text(encoding="utf-8", errors="replace")
    reported = [line for line in text.splitlines() if line.startswith(FAILED)]
    if reported:
        what = reported[0].removeprefix(FAILED).strip()
    elif match := ROOT_CAUSE.search(text, text.rfind("Root Cause") + 1):
        rank, exit_code = match.group(1), int(match.group(2))
        how = f"killed by signal {-exit_code}" if exit_code < 0 else f"exit code {exit_code}"
        what = f"rank {rank}: {how}"
    else:
        what = f"torchrun exit code {code}"
    return f"train: DDP training on {nproc} processes failed, {what}; log: {log_path}"


def rank_threads(cfg: TrainConfig) -> int:
    """Torch threads of one training process: `train.threads` shared by the ranks, so N ranks
    do not oversubscribe the cores one process would use."""
    return max(1, cfg.threads // cfg.nproc)
