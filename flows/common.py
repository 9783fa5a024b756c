"""What every flow shares: which task failures are worth a retry, loopline's log lines in the
run logs, the run's tags, and how a run fails on one of loopline's named errors."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

from prefect.states import Failed, State

from tasks.core.errors import LooplineError
from tasks.core.runtime import quiet_named_failures
from tasks.registry.tracking import is_transient

P = ParamSpec("P")
R = TypeVar("R")

# Importing Prefect (above) configured logging, replacing the root's handlers: filter them now.
quiet_named_failures()


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


def named_failure(body: Callable[P, R]) -> Callable[P, R | State]:
    """A flow body whose named error ends the run Failed with that error, type and one line, as
    the state message (instead of Prefect's "Flow run encountered an exception" and a
    traceback); calling the flow still raises the error, which the CLI prints as one line."""

    @functools.wraps(body)
    def run(*args: P.args, **kwargs: P.kwargs) -> R | State:
        try:
            return body(*args, **kwargs)
        except LooplineError as exc:
            return Failed(message=f"{type(exc).__name__}: {exc}", data=exc)

    # The body's signature with its annotations resolved where they were written: Prefect
    # validates the parameters against them, and `dt.date` means nothing in this module.
    run.__signature__ = inspect.signature(body, eval_str=True)
    return run
