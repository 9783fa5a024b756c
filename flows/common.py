"""What every flow shares: which task failures are worth a retry."""

from __future__ import annotations

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
