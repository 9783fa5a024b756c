"""What every flow shares: which task failures are worth a retry, loopline's log lines in the
run logs, and the run's tags."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from tasks.registry.tracking import is_transient


def retry_on_io_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry transient I/O faults only (a file system error, an MLflow store locked or
    unreachable for a moment); a data or gate error would fail the same way again."""
    try:
        state.result()
    except OSError:
        return True
    except Exception as exc:
        return is_transient(exc)
    return False


IO_RETRIES = {"retries": 2, "retry_delay_seconds": 2, "retry_condition_fn": retry_on_io_error}


# loopline's own loggers (tasks.*, flows.*): while a flow runs their lines go to its run logs.
RUN_LOGGERS = ("tasks", "flows")


def _in_a_run(record: logging.LogRecord) -> bool:
    """Only lines logged inside a flow or task run can be sent (a Dask worker's, or a stray
    thread's, have no run to go to): the rest stay on the console alone."""
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


@contextlib.contextmanager
def run_logs() -> Iterator[None]:
    """Send loopline's log lines (per-day scoring, training progress, gate verdicts) to the
    Prefect run logs while the flow runs, besides the console: the same records, one more
    handler, so the console shows nothing twice. A nested flow (the inline retrain) reuses
    the outer flow's handler; the outermost removes it."""
    from prefect.logging.handlers import APILogHandler

    loggers = [logging.getLogger(name) for name in RUN_LOGGERS]
    if any(isinstance(h, APILogHandler) for h in loggers[0].handlers):
        yield
        return
    handler = APILogHandler()
    handler.addFilter(_in_a_run)
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:  # e.g. under pytest: root at WARNING
            logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
        handler.flush()


def label_run(*tags: str) -> None:
    """Add tags to the flow run in progress (Prefect's flow decorator takes none; a
    deployment's own tags are kept)."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    if flow_run.id is None:
        return
    merged = list(dict.fromkeys([*flow_run.tags, *tags]))
    with get_client(sync_client=True) as client:
        client.update_flow_run(flow_run.id, tags=merged)


def trigger() -> str:
    """What started the flow run: another flow (an inline retrain), a deployment (its cron or
    an event trigger) or a person (the CLI, a script, `dvc repro` never runs Prefect)."""
    from prefect.runtime import deployment, flow_run

    if flow_run.parent_flow_run_id:
        return "subflow"
    return "deployment" if deployment.id else "manual"
