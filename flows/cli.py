"""The `loopline` command. Imports stay inside commands so `loopline --help` is instant."""

from __future__ import annotations

import datetime as dt
import functools
import gc
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


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse anything but a real YYYY-MM-DD before a path is built from it."""
    if value is None:
        return None
    from tasks.errors import LooplineError
    from tasks.score import parse_date

    try:
        return parse_date(value).isoformat()
    except LooplineError as exc:  # the option's name comes from click: keep the value and rule
        raise click.BadParameter(f"{value!r}: {str(exc).split(': ', 1)[-1]}") from None


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
    default=None,
    callback=_date,
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
    from tasks.config import override

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


@cli.command()
@click.option("--version", help="A registered version to make champion by hand (with --force).")
@click.option("--force", is_flag=True, help="Skip the gate: a recorded human override.")
@click.option("--reason", help="Why (required with --force; recorded in the history).")
@pass_app
def promote(app: App, version: str | None, force: bool, reason: str | None) -> None:
    """Gate the latest candidate; or, with --version N --force --reason, promote N by hand."""
    from tasks.promote import force_promote

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
    from tasks.promote import rollback as roll_back

    decision = roll_back(app.params, reason, to_version)
    click.echo(f"{decision.model_name}: champion v{decision.compared_to} → v{decision.version}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def status(app: App, as_json: bool) -> None:
    """Champion, challenger, previous and the latest promotion decisions with their reasons."""
    import json

    from tasks.promote import status as registry_status

    report = registry_status(app.params)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        _print_status(report)


def _print_status(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    models = Table(title=f"{report['model_name']}: aliases")
    for column in ("alias", "version", "variant", "holdout AUC", "p95 ms", "bytes", "ECE"):
        models.add_column(column)
    for alias in ("champion", "challenger", "previous"):
        entry = report[alias]
        if entry is None:
            models.add_row(alias, "—", "", "", "", "", "")
            continue
        m = entry["metrics"]
        models.add_row(
            alias,
            entry["version"],
            entry["variant"] or "",
            _num(m.get("auc_floor"), ".4f"),
            _num(m.get("latency_p95"), ".2f"),
            _num(m.get("artifact_size"), ",.0f"),
            _num(m.get("calibration"), ".4f"),
        )
    console.print(models)
    for line in _cost_lines(report):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    history = Table(title="latest decisions")
    for column in ("at", "version", "decision", "vs", "by", "reasons"):
        history.add_column(column, overflow="fold")
    for d in report["history"]:
        history.add_row(
            d["at"],
            d["version"],
            d["decision"],
            d["compared_to"] or "—",
            d["actor"],
            "\n".join(d["reasons"]),
        )
    console.print(history)


def _cost_lines(report: dict) -> list[str]:
    """Champion's and challenger's training cost, cost per 1M predictions, latency and lifetime
    at the production volume; "—" where a version predates the figure."""
    cfg = report["cost"]
    cur, volume = cfg["currency"], cfg["production"]
    lines = [
        f"costs in {cur} (prices from params.yaml: {cfg['cpu_hour']} per CPU-hour, "
        f"{cfg['gpu_hour']} per GPU-hour; seconds measured on the machine that ran the work)"
    ]
    for alias in ("champion", "challenger"):
        entry = report[alias]
        if entry is None:
            continue
        c = entry["cost"]
        life = c["lifetime"]
        lifetime = (
            f"{life['total']:.4g} {cur}, inference {life['inference_share']:.0%} of it"
            if life
            else "—"
        )
        lines.append(
            f"  {alias} v{entry['version']}: training {_money(c['training_cost'], cur)} "
            f"({_num(c['training_cpu_s'], ',.0f') or '—'} CPU-s); "
            f"{_money(c['cost_per_million'], cur)} per 1M predictions; "
            f"latency p95 {_num(c['latency_ms_p95'], '.2f') or '—'} ms per batch; "
            f"lifetime ({volume['rows_per_night']:,} rows a night for "
            f"{volume['nights_per_model_life']} nights): {lifetime}"
        )
    return lines


def _money(value: float | None, currency: str) -> str:
    return "—" if value is None else f"{value:.4g} {currency}"


def _num(value: object, spec: str) -> str:
    return format(value, spec) if isinstance(value, int | float) else ""


@cli.command()
@click.option("--date", "day", callback=_date, help="The batch day, YYYY-MM-DD.")
@click.option("--start", callback=_date, help="A backfill's first day (with --end).")
@click.option("--end", callback=_date, help="A backfill's last day (default: --date).")
@pass_app
def score(app: App, day: str | None, start: str | None, end: str | None) -> None:
    """Run the Prefect flow `inference` on data/incoming/DATE.parquet, or on every day from
    --start to --end (a backfill: days run in parallel with score.runner: dask); drift and
    the retrain decision run once, on the last day."""
    first, last = _score_range(app.params, day, start, end)
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


def _score_range(
    params: Params, day: str | None, start: str | None, end: str | None
) -> tuple[str | None, str]:
    """(first day or None, last day) of `score`, checked before Prefect starts: an order the
    user can swap, and every day's batch present (a backfill names all missing days at once)."""
    from tasks.errors import DataSourceError
    from tasks.replay import days_between
    from tasks.score import day_paths

    if day and end and day != end:
        raise click.UsageError(f"--date {day} and --end {end} disagree; give one of them")
    last = end or day
    if last is None:
        raise click.UsageError("give --date DAY, or --start FIRST --end LAST for a backfill")
    if start is None:
        return None, last
    if start > last:
        raise click.UsageError(f"--start {start} is after --end {last}; swap them")
    days = days_between(dt.date.fromisoformat(start), dt.date.fromisoformat(last))
    missing = [d.isoformat() for d in days if not day_paths(params, d)["incoming"].exists()]
    if missing:
        raise DataSourceError(
            f"{params.score.incoming_dir}: no batch file for {len(missing)} of {len(days)} "
            f"days ({', '.join(missing[:5])}{', …' if len(missing) > 5 else ''}); write "
            "them (YYYY-MM-DD.parquet) or narrow --start/--end"
        )
    return start, last


PARQUET_FILE = click.Path(dir_okay=False, path_type=Path)


@cli.command()
@click.option("--input", "source", required=True, type=PARQUET_FILE, help="Feature rows, any size.")
@click.option("--output", "target", required=True, type=PARQUET_FILE, help="Scores (Parquet).")
@click.option(
    "--alias",
    type=click.Choice(["champion", "challenger"]),
    default="champion",
    show_default=True,
    help="Which registered model scores.",
)
@pass_app
def predict(app: App, source: Path, target: Path, alias: str) -> None:
    """Bulk-score a Parquet file, streamed in batches of score.chunk_rows: memory stays flat
    whatever the file's size, and the output appears only when complete. No validation gate
    (that is the nightly `score`): unseen categories go to the out-of-vocabulary bucket."""
    from rich.progress import Progress

    from tasks.bulk_score import score_parquet
    from tasks.score import resolve_alias, resolve_champion

    params = app.params
    model = resolve_champion(params) if alias == "champion" else resolve_alias(params, alias)
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


@cli.command()
@click.option("--date", "day", required=True, callback=_date, help="The batch day, YYYY-MM-DD.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def lineage(app: App, day: str, as_json: bool) -> None:
    """Where a day's predictions came from: model version → run → data → code."""
    import json

    from tasks.lineage import lineage as trace
    from tasks.score import parse_date

    chain = trace(app.params, parse_date(day))
    if as_json:
        click.echo(json.dumps(chain, indent=2))
        return
    click.echo(
        f"{chain['predictions']} ({chain['rows']} rows, scored {chain['scored_at']})\n"
        f"  → {chain['model_name']} v{chain['model_version']} ({chain['variant']}, teacher "
        f"v{chain['teacher_version']})\n"
        f"  → MLflow run {chain['run_id']} (parent {chain['parent_run_id']})\n"
        f"  → training window {chain['training_window']}, data {chain['data_fingerprint']}\n"
        f"  → git {chain['git_commit']}, params {chain['params_hash']}"
    )


@cli.command()
@click.option("--start", required=True, callback=_date, help="First day, YYYY-MM-DD.")
@click.option("--end", required=True, callback=_date, help="Last day, YYYY-MM-DD.")
@pass_app
def replay(app: App, start: str, end: str) -> None:
    """Replay days of the data as nightly batches through the loop (the simulation clock),
    one inference run every `replay.cadence_days` days."""
    _replay(app, start, end)


@cli.command()
@pass_app
def summary(app: App) -> None:
    """Write the summary page (replay.summary_dir/index.html) from the last replay."""
    from tasks.summary import build_summary, load_replay

    click.echo(build_summary(app.params, load_replay(app.params)))


@cli.command()
@click.option("--start", default="2013-04-01", show_default=True, callback=_date)
@click.option("--end", default="2013-12-31", show_default=True, callback=_date)
@pass_app
def demo(app: App, start: str, end: str) -> None:
    """After `dvc repro`: restart the loop from the pipeline's champion, replay [start, end],
    write the summary page and say where everything is (what `make demo` runs)."""
    import time

    from tasks.replay import replay_summary_path, start_from_pipeline_model
    from tasks.summary import build_summary

    params = app.params
    version = start_from_pipeline_model(params)
    click.echo(f"the loop starts from {params.registry.model_name} v{version}")
    result = _replay(app, start, end)
    started = time.perf_counter()
    page = build_summary(params, result)
    click.echo(
        f"\nreplay {start} → {end}: {result['seconds']['total'] / 60:.1f} min "
        f"(oracle training {result['seconds']['oracle_training']:.0f} s beside the loop, "
        f"waited for {result['seconds']['oracle_wait']:.0f} s); "
        f"summary {time.perf_counter() - started:.1f} s\n"
        f"summary page       {page.resolve().as_uri()}\n"
        f"replay figures     {replay_summary_path(params)}\n"
        f"drift reports      {params.drift.report_dir}/\n"
        f"predictions        {params.score.predictions_dir}/  (quarantine: "
        f"{params.score.quarantine_dir}/)\n"
        f"registry status    .venv/bin/loopline status\n"
        f"lineage of a day   .venv/bin/loopline lineage --date {end}\n"
        f"MLflow + Prefect   make ui → http://127.0.0.1:5000 and http://127.0.0.1:4200"
    )


def _replay(app: App, start: str, end: str) -> dict:
    """Run the replay with a progress bar and print its per-month table; returns its summary."""
    app.params  # noqa: B018
    prefect_defaults()
    import datetime as dt

    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from flows.inference import inference_for
    from tasks.replay import days_between
    from tasks.replay import replay as run_replay

    inference = inference_for(app.params)  # score.runner applies to every tick

    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    with Progress(transient=False) as progress:
        task = progress.add_task("replay", total=len(days_between(first, last)))

        def run_tick(tick_start: dt.date, tick_end: dt.date) -> dict:
            return inference(
                date=tick_end.isoformat(),
                start=tick_start.isoformat(),
                params_path=str(app.params_path),
            )

        def advance(tick_start: dt.date, tick_end: dt.date, result: dict) -> None:
            drift = result["drift"].get("drift_share", 0.0)
            progress.update(
                task,
                advance=(tick_end - tick_start).days + 1,
                description=f"replay {tick_end} drift {drift:.0%}",
            )

        summary = run_replay(app.params, first, last, run_tick, advance)
    table = Table(title=f"replay {start} → {end} (static model v{summary['static_version']})")
    columns = ("month", "rows", "loop AUC", "static AUC", "oracle AUC", "drift share", "retrains")
    for column in columns:
        table.add_column(column)
    for m in summary["months"]:
        table.add_row(
            m["month"],
            f"{m['rows']:,}",
            _num(m["loop_auc"], ".4f"),
            _num(m["static_auc"], ".4f"),
            _num(m["oracle_auc"], ".4f"),
            _num(m["mean_drift_share"], ".2f"),
            str(m["retrains"]),
        )
    Console().print(table)
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
