"""One rank of DDP teacher training, as torchrun starts it (`-m tasks.training.ddp_worker`).

It runs the very same `train_teacher` as the one-process path, in its `Distributed` place (gloo
on CPU, nccl when CUDA is available). A rank's own error is reported on one line of the log, in
the form `tasks.training.ddp.failure` reads back.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import traceback
from pathlib import Path

from tasks.core.config import Params
from tasks.core.runtime import go_offline, setup_logging
from tasks.training.ddp import FAILED
from tasks.training.loop import Distributed
from tasks.training.teacher import train_teacher


def main(argv: list[str] | None = None) -> None:
    """One rank (torchrun sets RANK, LOCAL_RANK, WORLD_SIZE and the rendezvous address)."""
    go_offline()
    parser = argparse.ArgumentParser(prog="tasks.training.ddp_worker")
    parser.add_argument("params_json", type=Path)
    parser.add_argument("--until", type=dt.date.fromisoformat)
    parser.add_argument("--parent-run-id")
    args = parser.parse_args(argv)
    rank = int(os.environ["RANK"])
    if rank == 0:
        setup_logging()  # rank 0 speaks for the run on the console, as one process would
    else:
        logging.basicConfig(level=logging.WARNING, format=f"rank {rank}: %(message)s")
    try:
        params = Params.model_validate_json(args.params_json.read_text(encoding="utf-8"))
        _train_rank(params, args.until, args.parent_run_id, rank)
    except Exception as exc:
        traceback.print_exc()  # to stderr: the log file, not the console
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"{FAILED} rank {rank}: {type(exc).__name__}: {first}", file=sys.stderr, flush=True)
        sys.exit(1)


def _train_rank(params: Params, until: dt.date | None, parent_run_id: str | None, rank: int):
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available():
        backend, device = "nccl", torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    else:
        backend, device = "gloo", torch.device("cpu")
    timeout = dt.timedelta(seconds=params.train.ddp_timeout_s)
    dist.init_process_group(backend, timeout=timeout)
    try:
        place = Distributed(rank, dist.get_world_size(), device)
        train_teacher(params, until, parent_run_id, place)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
