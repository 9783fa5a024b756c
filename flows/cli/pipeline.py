"""Commands that build the pipeline's outputs: ingest, validate, one stage, a training run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from flows.cli.app import App, checked_date, cli, pass_app, prefect_defaults
from tasks import stages


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
    default=None,
    callback=checked_date,
    help="End of the training window (YYYY-MM-DD); default: train.window in params.",
)
@click.option(
    "--nproc",
    type=int,
    default=None,
    help="Processes training the teacher (DDP under torchrun when > 1); default: train.nproc.",
)
@pass_app
def train(app: App, until: str | None, nproc: int | None) -> None:
    """Run the Prefect flow `training`: validate → teacher → evaluate → distil → register."""
    from tasks.core.config import override

    params = app.params  # fail fast on a bad params file or --nproc, before Prefect starts
    if nproc is not None:
        override(params, "--nproc", "train", nproc=nproc)
    prefect_defaults()
    from flows.training import training_flow

    training_flow(
        params_path=str(app.params_path),
        until=dt.date.fromisoformat(until) if until else None,
        nproc=nproc,
    )


@cli.command()
@click.argument("name", type=click.Choice(list(stages.STAGES)))
@pass_app
def stage(app: App, name: str) -> None:
    """Run one pipeline stage by name, without Prefect (what dvc.yaml calls)."""
    stages.STAGES[name](app.params)
