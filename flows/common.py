"""What every flow shares: which task failures are worth a retry, and how a run fails on one of
loopline's named errors."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
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
