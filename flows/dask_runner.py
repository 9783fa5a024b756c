"""`score.runner: dask`: the DaskTaskRunner built from params at call time (Prefect fixes a
flow's task runner when it is decorated), and what the flow asks of the cluster it runs on."""

from __future__ import annotations

import sys
from typing import Any

from tasks.core.config import Params
from tasks.core.errors import LooplineError


class PrefectServerRequired(LooplineError):
    """Dask worker processes report their task runs to a Prefect API that must already run."""


def task_runner(params: Params) -> Any:
    """A DaskTaskRunner on `score.dask.address`, or on a LocalCluster of worker processes.

    Without a Prefect server this refuses instead of falling back to threads: each worker
    process would start an ephemeral server of its own (≈20 s each, racing on one SQLite
    database: docs/operations.md#prefect-start-up), and threads under one GIL would not be the
    run the user asked for.
    """
    from prefect.settings import get_current_settings
    from prefect_dask import DaskTaskRunner

    if not get_current_settings().api.url:
        raise PrefectServerRequired(
            "score.runner: dask needs a Prefect server for its worker processes: start one "
            "(`make ui`, or `prefect server start`) and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api; or set score.runner: local"
        )
    cfg = params.score.dask
    if cfg.address:
        return DaskTaskRunner(address=cfg.address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": cfg.workers,
            "threads_per_worker": cfg.threads_per_worker,
            "processes": True,
            "dashboard_address": None,  # no fixed port 8787 to collide with another cluster
        }
    )


def run_client() -> Any:
    """The Dask client of the current flow run, or None when its runner is not Dask (checked
    without importing prefect-dask: a local run never pays for importing distributed)."""
    from prefect.context import get_run_context

    module = sys.modules.get("prefect_dask")
    runner = get_run_context().task_runner
    return runner.client if module and isinstance(runner, module.DaskTaskRunner) else None


def cluster_cpu_seconds(client: Any) -> float:
    """CPU seconds so far of every worker process: the work the flow's own meter cannot see."""
    from tasks.core.cost import process_cpu_seconds

    return float(sum(client.run(process_cpu_seconds).values()))


def describe(client: Any) -> str:
    workers = client.nthreads()
    return (
        f"dask at {client.scheduler.address}: {len(workers)} workers, "
        f"{sum(workers.values())} threads"
    )
