"""Commands on the model registry: promote, rollback, status, lineage."""

from __future__ import annotations

import json

import click

from flows.cli import render
from flows.cli.app import App, checked_date, cli, pass_app
from tasks import stages


@cli.command()
@click.option("--version", help="A registered version to make champion by hand (with --force).")
@click.option("--force", is_flag=True, help="Skip the gate: a recorded human override.")
@click.option("--reason", help="Why (required with --force; recorded in the history).")
@pass_app
def promote(app: App, version: str | None, force: bool, reason: str | None) -> None:
    """Gate the latest candidate; or, with --version N --force --reason, promote N by hand."""
    from tasks.registry.aliases import force_promote

    if version is None and not force:
        decision = stages.promote(app.params)
    elif version is None or not force or not reason:
        raise click.UsageError("a manual promotion needs --version N --force --reason TEXT")
    else:
        decision = force_promote(app.params, version, reason)
    click.echo(
        f"{decision.model_name} v{decision.version}: {decision.decision}; "
        f"champion is v{decision.champion_after}"
    )


@cli.command()
@click.option("--to", "to_version", help="The version to restore (default: the `previous` alias).")
@click.option("--reason", required=True, help="Why (recorded in the history).")
@pass_app
def rollback(app: App, to_version: str | None, reason: str) -> None:
    """Move `champion` back to the previous champion (or --to VERSION), recorded with a reason."""
    from tasks.registry.aliases import rollback as roll_back

    decision = roll_back(app.params, reason, to_version)
    click.echo(f"{decision.model_name}: champion v{decision.compared_to} → v{decision.version}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def status(app: App, as_json: bool) -> None:
    """Champion, challenger, previous and the latest promotion decisions with their reasons."""
    from tasks.registry.status import status as registry_status

    report = registry_status(app.params)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        render.print_status(report)


@cli.command()
@click.option(
    "--date", "day", required=True, callback=checked_date, help="The batch day, YYYY-MM-DD."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def lineage(app: App, day: str, as_json: bool) -> None:
    """Where a day's predictions came from: model version → run → data → code."""
    from tasks.core.dates import parse_date
    from tasks.registry.lineage import lineage as trace

    chain = trace(app.params, parse_date(day))
    click.echo(json.dumps(chain, indent=2) if as_json else render.lineage_text(chain))
