"""Commands that run the loop over time: replay, demo, summary, serve (the deployments)."""

from __future__ import annotations

import datetime as dt
import time

import click

from flows.cli import render
from flows.cli.app import App, checked_date, cli, pass_app, prefect_defaults

POLICY = click.option(
    "--policy",
    type=click.Choice(["cost_aware", "threshold", "calendar", "never"]),
    default=None,
    help="Retrain policy for this replay (default: retrain.policy).",
)


@cli.command()
@click.option("--start", required=True, callback=checked_date, help="First day, YYYY-MM-DD.")
@click.option("--end", required=True, callback=checked_date, help="Last day, YYYY-MM-DD.")
@POLICY
@pass_app
def replay(app: App, start: str, end: str, policy: str | None) -> None:
    """Replay days of the data as nightly batches through the loop (the simulation clock),
    one inference run every `replay.cadence_days` days."""
    run_replay(app, start, end, policy)


@cli.command()
@pass_app
def summary(app: App) -> None:
    """Write the summary page (replay.summary_dir/index.html) from the last replay."""
    from tasks.simulation.summary import build_summary, load_replay

    click.echo(build_summary(app.params, load_replay(app.params)))


@cli.command()
@click.option("--start", default="2013-04-01", show_default=True, callback=checked_date)
@click.option("--end", default="2013-12-31", show_default=True, callback=checked_date)
@POLICY
@pass_app
def demo(app: App, start: str, end: str, policy: str | None) -> None:
    """After `dvc repro`: restart the loop from the pipeline's champion, replay [start, end],
    write the summary page and say where everything is (what `make demo` runs)."""
    from tasks.simulation.replay import start_from_pipeline_model
    from tasks.simulation.summary import build_summary

    params = app.params
    version = start_from_pipeline_model(params)
    click.echo(f"the loop starts from {params.registry.model_name} v{version}")
    result = run_replay(app, start, end, policy)
    started = time.perf_counter()
    page = build_summary(params, result)
    click.echo(render.demo_closing(params, result, page, time.perf_counter() - started, end))


def run_replay(app: App, start: str, end: str, policy: str | None = None) -> dict:
    """Run the replay with a progress bar and print its per-month table; returns its summary."""
    from tasks.core.config import require_volume
    from tasks.core.dates import days_between

    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    days_between(first, last)  # a reversed range fails first, before any other work
    require_volume(app.params)  # a bad params file fails before Prefect starts
    prefect_defaults()
    from rich.progress import Progress

    from flows.inference import inference_for
    from tasks.simulation.replay import replay as replay_days

    inference = inference_for(app.params)  # score.runner applies to every tick

    with Progress(transient=False) as progress:
        task = progress.add_task("replay", total=len(days_between(first, last)))

        def run_tick(tick_start: dt.date, tick_end: dt.date) -> dict:
            return inference(
                date=tick_end.isoformat(),
                start=tick_start.isoformat(),
                params_path=str(app.params_path),
                retrain_policy=policy,
            )

        def advance(tick_start: dt.date, tick_end: dt.date, result: dict) -> None:
            drift = result["drift"].get("drift_share", 0.0)
            progress.update(
                task,
                advance=(tick_end - tick_start).days + 1,
                description=f"replay {tick_end} drift {drift:.0%}",
            )

        summary = replay_days(app.params, first, last, run_tick, advance)
    render.print_months(summary, start, end, app.params.dataset.plural_noun)
    return summary


@cli.command()
@pass_app
def serve(app: App) -> None:
    """Serve the deployments: nightly scoring (cron) and retraining (event trigger + weekly cron).
    Needs a Prefect server: `make ui` starts one on 127.0.0.1:4200 (set PREFECT_API_URL)."""
    app.params  # noqa: B018
    prefect_defaults()
    from prefect import serve as prefect_serve

    from flows.serve import build_deployments

    prefect_serve(*build_deployments(app.params, str(app.params_path.resolve())))
