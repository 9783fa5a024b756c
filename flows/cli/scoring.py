"""Commands that score: a nightly batch or a backfill (`score`), a file of any size (`predict`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from flows.cli.app import App, checked_date, cli, pass_app, prefect_defaults
from tasks.core.tags import CHALLENGER, CHAMPION

if TYPE_CHECKING:
    from tasks.core.config import Params

PARQUET_FILE = click.Path(dir_okay=False, path_type=Path)


@cli.command()
@click.option("--date", "day", callback=checked_date, help="The batch day, YYYY-MM-DD.")
@click.option("--start", callback=checked_date, help="A backfill's first day (with --end).")
@click.option("--end", callback=checked_date, help="A backfill's last day (default: --date).")
@pass_app
def score(app: App, day: str | None, start: str | None, end: str | None) -> None:
    """Run the Prefect flow `inference` on data/incoming/DATE.parquet, or on every day from
    --start to --end (a backfill: days run in parallel with score.runner: dask); drift and
    the retrain decision run once, on the last day."""
    first, last = score_range(app.params, day, start, end)
    prefect_defaults()
    from flows.inference import inference_for

    summary = inference_for(app.params)(date=last, start=first, params_path=str(app.params_path))
    if first is None:
        click.echo(
            f"{summary['date']}: {summary['scored']} scored, {summary['quarantined']} "
            f"quarantined → {summary['predictions']}"
        )
        return
    click.echo(
        f"{first}..{last}: {len(summary.get('days', [summary]))} days, {summary['scored']} "
        f"scored, {summary['quarantined']} quarantined in {summary['cost']['wall_s']:.1f} s "
        f"({summary['runner']}) → {app.params.score.predictions_dir}/"
    )


def score_range(
    params: Params, day: str | None, start: str | None, end: str | None
) -> tuple[str | None, str]:
    """(first day or None, last day) of `score`, checked before Prefect starts: an order the
    user can swap, and every day's batch present (a backfill names all missing days at once)."""
    from tasks.core.dates import days_between
    from tasks.core.layout import day_paths
    from tasks.data.nightly_validation import check_batches_exist

    if day and end and day != end:
        raise click.UsageError(f"--date {day} and --end {end} disagree; give one of them")
    last = end or day
    if last is None:
        raise click.UsageError("give --date DAY, or --start FIRST --end LAST for a backfill")
    if start is not None and start > last:
        raise click.UsageError(f"--start {start} is after --end {last}; swap them")
    days = days_between(dt.date.fromisoformat(start or last), dt.date.fromisoformat(last))
    check_batches_exist(params, {d: day_paths(params, d)["incoming"] for d in days})
    return start, last


@cli.command()
@click.option("--input", "source", required=True, type=PARQUET_FILE, help="Feature rows, any size.")
@click.option("--output", "target", required=True, type=PARQUET_FILE, help="Scores (Parquet).")
@click.option(
    "--alias",
    type=click.Choice([CHAMPION, CHALLENGER]),
    default=CHAMPION,
    show_default=True,
    help="Which registered model scores.",
)
@pass_app
def predict(app: App, source: Path, target: Path, alias: str) -> None:
    """Bulk-score a Parquet file, streamed in batches of score.chunk_rows: memory stays flat
    whatever the file's size, and the output appears only when complete. No validation gate
    (that is the nightly `score`): unseen categories go to the out-of-vocabulary bucket."""
    from rich.progress import Progress

    from tasks.serving.bulk import score_parquet
    from tasks.serving.champion import resolve_alias, resolve_champion

    params = app.params
    model = resolve_champion(params) if alias == CHAMPION else resolve_alias(params, alias)
    if model is None:
        raise click.ClickException(f"{params.registry.model_name}: no version holds @{alias}")
    with Progress(transient=True) as progress:
        bar = progress.add_task(f"scoring with v{model.version}", total=None)
        result = score_parquet(
            model,
            source,
            target,
            id_columns=params.dataset.id_columns,
            batch_rows=params.score.chunk_rows,
            on_batch=lambda rows, total: progress.update(bar, advance=rows, total=total),
        )
    click.echo(
        f"{result.rows:,} rows scored by {model.name} v{model.version} in {result.seconds:.1f} s "
        f"({result.rows_per_s:,.0f} rows/s) → {target}"
    )
