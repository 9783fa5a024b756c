"""The `loopline` command. Imports stay inside commands so `loopline --help` is instant."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tasks.runtime import go_offline, setup_logging

if TYPE_CHECKING:
    from tasks.config import Params

STAGES = ("ingest", "validate")


class App:
    """What every command shares: the params path, loaded once on first use."""

    def __init__(self, params_path: Path):
        self.params_path = params_path

    @functools.cached_property
    def params(self) -> Params:
        from tasks.config import load_params

        return load_params(self.params_path)


pass_app = click.make_pass_decorator(App)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--params",
    "params_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="params.yaml",
    show_default=True,
    help="The config file.",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.pass_context
def cli(ctx: click.Context, params_path: Path, verbose: bool) -> None:
    """loopline: a closed-loop MLOps pipeline (validate → train → distil → promote → score →
    watch drift → retrain)."""
    setup_logging(verbose)
    ctx.obj = App(params_path)


@cli.command()
@pass_app
def ingest(app: App) -> None:
    """Build the labelled feature table from the source named in params.yaml."""
    from tasks.ingest import run_ingest

    run_ingest(app.params.dataset, app.params.ingest)


@cli.command()
@click.option(
    "--input",
    "input_path",
    type=click.Path(exists=True, path_type=Path),
    help="Check this CSV/Parquet file or directory instead of the feature table "
    "(writes the report and quarantine, no validated table).",
)
@pass_app
def validate(app: App, input_path: Path | None) -> None:
    """Run the data contract: quarantine bad rows, fail the gate on table-level breaks."""
    from tasks.validate import run_validate

    p = app.params
    run_validate(p.dataset, p.validate_, p.ingest.features_dir, input_path=input_path)


@cli.command()
@click.argument("name", type=click.Choice(STAGES))
@click.pass_context
def stage(ctx: click.Context, name: str) -> None:
    """Run one pipeline stage by name (what dvc.yaml calls)."""
    ctx.invoke(cli.commands[name])


def main() -> None:
    """Entry point: every expected failure is one line on stderr and a non-zero exit."""
    go_offline()
    from tasks.errors import LooplineError

    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("loopline: aborted", err=True)
        sys.exit(130)
    except LooplineError as exc:
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
