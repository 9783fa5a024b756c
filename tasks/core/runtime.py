"""Process-wide settings every entry point applies first: telemetry off, quiet logging."""

from __future__ import annotations

import logging
import os

from tasks.core.errors import LooplineError

# Each tool's own switch (docs/operations.md#telemetry-off); MLflow honours DO_NOT_TRACK
# only when it is "true".
OFFLINE_ENV = {
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    "ITERATIVE_DO_NOT_TRACK": "1",
}
# Quiet, not offline: progress bars and INFO chatter from libraries inside our own output.
QUIET_ENV = {
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "GIT_PYTHON_REFRESH": "quiet",
}
NOISY_LOGGERS = (
    "great_expectations",
    "mlflow",
    "alembic",
    "urllib3",
    "dvc",
    "filelock",
    "numexpr",
    "httpx",
    "httpcore",
    "docket",
    "uvicorn",
)


def go_offline() -> None:
    """Switch every phone-home off for this process and its children (without overriding a
    value the user set deliberately)."""
    for key, value in {**OFFLINE_ENV, **QUIET_ENV}.items():
        os.environ.setdefault(key, value)


# Prefect's loggers of a task or flow run: their records go to the run's logs in Prefect (a
# handler on these loggers) and, through the root, to the console.
RUN_LOGGERS = ("prefect.task_runs", "prefect.flow_runs")


def setup_logging(verbose: bool = False) -> None:
    from rich.logging import RichHandler

    level = logging.DEBUG if verbose else logging.INFO
    # Our own loggers keep the level: importing Prefect resets the root's to WARNING.
    for own in ("tasks", "flows"):
        logging.getLogger(own).setLevel(level)
    logging.basicConfig(
        level=level,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False, markup=False)],
        force=True,
    )
    # A filter on the handler, not logger levels: some libraries reset their level on import.
    logging.getLogger().handlers[0].addFilter(_quiet_third_party)


def quiet_named_failures() -> None:
    """Keep Prefect's report of a run that failed on one of loopline's named errors (its
    traceback, its "Finished in state Failed(...)") off the console, where the CLI prints the
    error as one line; the run's own logs in Prefect keep it. Runs that completed with nothing
    to say stay off the console too. LOOPLINE_DEBUG=1 shows it all.
    Call it after Prefect configured logging (on import), which replaces the root's handlers."""
    if os.environ.get("LOOPLINE_DEBUG"):
        return
    for handler in logging.getLogger().handlers:
        for console_filter in (_not_a_named_failure, _says_something):
            if console_filter not in handler.filters:
                handler.addFilter(console_filter)


# What Prefect logs for every run that completed without a message: hundreds of lines in a
# replay that tell the console nothing (the run's own logs in Prefect keep them).
EMPTY_COMPLETION = "Finished in state Completed()"


def _says_something(record: logging.LogRecord) -> bool:
    return not (record.name.startswith(RUN_LOGGERS) and record.getMessage() == EMPTY_COMPLETION)


def _not_a_named_failure(record: logging.LogRecord) -> bool:
    if not record.name.startswith(RUN_LOGGERS):
        return True
    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, LooplineError):
        return False
    text = record.getMessage()
    return not any(f"{name}:" in text or f"{name}(" in text for name in _named_errors())


def _named_errors(kind: type[LooplineError] = LooplineError) -> set[str]:
    """The class names of every named error, subclasses defined anywhere included."""
    names = {kind.__name__}
    for sub in kind.__subclasses__():
        names |= _named_errors(sub)
    return names


def _quiet_third_party(record: logging.LogRecord) -> bool:
    noisy = record.name.split(".")[0] in NOISY_LOGGERS
    return record.levelno >= logging.WARNING or not noisy
