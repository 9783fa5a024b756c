"""The `loopline` command. Commands live by concern (pipeline, registry, scoring, loop), what
they print in `render`; heavy imports stay inside commands so `loopline --help` is instant."""

from __future__ import annotations

import gc
import os
import sys
import traceback

import click

from flows.cli import api, drafting, loop, pipeline, registry, scoring  # noqa: F401  (register commands)
from flows.cli.app import cli
from tasks.core.runtime import go_offline

__all__ = ["cli", "main"]


def main() -> None:
    """Entry point: every expected failure is one line on stderr and a non-zero exit."""
    go_offline()
    from tasks.core.errors import LooplineError

    try:
        cli.main(standalone_mode=False)
        # Free Arrow scanners while Arrow is alive: finalised at interpreter teardown their
        # threads can abort the process after the work is done (apache/arrow#34314).
        gc.collect()
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # usage errors too: one line, not the usage screen
        click.echo(f"loopline: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("loopline: aborted", err=True)
        sys.exit(130)
    except LooplineError as exc:
        if os.environ.get("LOOPLINE_DEBUG"):
            traceback.print_exc()  # where it was raised, before the one line
        click.echo(f"loopline: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        if os.environ.get("LOOPLINE_DEBUG"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        click.echo(
            f"loopline: unexpected error: {type(exc).__name__}: {first} "
            "(set LOOPLINE_DEBUG=1 for the traceback)",
            err=True,
        )
        sys.exit(1)
