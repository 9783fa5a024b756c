"""The `loopline` command. Imports stay inside commands so `loopline --help` is instant."""

from __future__ import annotations

import datetime as dt
import functools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tasks import stages
from tasks.runtime import go_offline, setup_logging

if TYPE_CHECKING:
    from tasks.config import Params


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
    stages.ingest(app.params)


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
    stages.validate(app.params, input_path)


@cli.command()
@click.option(
    "--until",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="End of the training window (YYYY-MM-DD); default: train.window in params.",
)
@pass_app
def train(app: App, until: dt.datetime | None) -> None:
    """Run the Prefect flow `training`: validate → teacher → evaluate → distil → register."""
    app.params  # noqa: B018  (fail fast on a bad params file, before Prefect starts)
    prefect_defaults()
    from flows.training import training_flow

    training_flow(params_path=str(app.params_path), until=until.date() if until else None)


@cli.command()
@click.argument("name", type=click.Choice(list(stages.STAGES)))
@pass_app
def stage(app: App, name: str) -> None:
    """Run one pipeline stage by name, without Prefect (what dvc.yaml calls)."""
    stages.STAGES[name](app.params)


def prefect_defaults() -> None:
    """Project-local Prefect home and a start-up timeout that fits 2 cores (DESIGN.md §8)."""
    os.environ.setdefault("PREFECT_HOME", str(Path(".prefect").resolve()))
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


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
