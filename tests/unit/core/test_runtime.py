"""What reaches the console from Prefect's run loggers."""

from __future__ import annotations

import logging

import pytest

from tasks.core.runtime import quiet_named_failures


@pytest.fixture
def console(monkeypatch):
    """A root handler like the CLI's, with loopline's console filters on it (the other root
    handlers get their own filters back afterwards)."""
    monkeypatch.delenv("LOOPLINE_DEBUG", raising=False)
    root = logging.getLogger()
    before = {handler: list(handler.filters) for handler in root.handlers}
    handler = logging.Handler()
    root.addHandler(handler)
    quiet_named_failures()
    yield handler
    root.removeHandler(handler)
    for other, filters in before.items():
        other.filters = filters


def _shown(handler: logging.Handler, logger: str, message: str) -> bool:
    record = logging.LogRecord(logger, logging.INFO, __file__, 1, message, None, None)
    return bool(handler.filter(record))


def test_runs_that_completed_with_nothing_to_say_stay_off_the_console(console):
    assert not _shown(console, "prefect.task_runs", "Finished in state Completed()")
    assert not _shown(console, "prefect.flow_runs", "Finished in state Completed()")
    assert _shown(console, "prefect.flow_runs", "Finished in state Completed('12 rows scored')")
    assert _shown(console, "prefect.flow_runs", "Beginning flow run 'score' for flow 'inference'")
    assert _shown(console, "tasks.serving", "Finished in state Completed()")  # not Prefect's
