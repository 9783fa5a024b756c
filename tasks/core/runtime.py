"""Process-wide settings every entry point applies first: telemetry off, quiet logging."""

from __future__ import annotations

import logging
import os

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


def setup_logging(verbose: bool = False) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False, markup=False)],
        force=True,
    )
    # A filter on the handler, not logger levels: some libraries reset their level on import.
    logging.getLogger().handlers[0].addFilter(_quiet_third_party)


def _quiet_third_party(record: logging.LogRecord) -> bool:
    noisy = record.name.split(".")[0] in NOISY_LOGGERS
    return record.levelno >= logging.WARNING or not noisy
