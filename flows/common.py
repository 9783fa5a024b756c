"""What every flow shares: which task failures are worth a retry."""

from __future__ import annotations

from typing import Any


def retry_on_io_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry transient I/O faults only; a data or gate error would fail the same way again."""
    try:
        state.result()
    except OSError:
        return True
    except Exception:
        return False
    return False


IO_RETRIES = {"retries": 2, "retry_delay_seconds": 2, "retry_condition_fn": retry_on_io_error}
