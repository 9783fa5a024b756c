"""`loopline init`: a first params file for a new data set, drafted from a sample of its file."""

from __future__ import annotations

from pathlib import Path

import click

from flows.cli.app import App, cli, pass_app


@cli.command()
@click.option(
    "--input",
    "source",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="The data set's file (CSV, Parquet or a Parquet folder).",
)
@click.option("--name", help="The data set's name (default: the file's name without suffix).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The params file to write (default: params-NAME.yaml); never overwritten.",
)
@pass_app
def init(app: App, source: Path, name: str | None, output: Path | None) -> None:
    """Draft the dataset section and validation rules of a new params file from a sample of
    --input (types, ranges, closed sets, nulls, id, event time, label), every guess commented;
    the other sections come from --params. Check the guesses, then run `loopline ingest`."""
    import yaml

    from tasks.core.config import Params
    from tasks.core.io import read_table, write_text
    from tasks.data.draft import draft, render, sample

    name = name or source.name.split(".")[0]
    output = output or Path(f"params-{name}.yaml")
    if output.exists():
        raise click.UsageError(f"{output} exists; pass --output with a new file name")
    frame = read_table(source)
    made = draft(sample(frame), name, str(source), len(frame))
    text = render(made, app.params.as_written())  # `auto` sizes stay auto for the new data
    Params.model_validate(yaml.safe_load(text))  # the draft loads, or nothing is written
    write_text(output, text)
    features = made.dataset["features"]
    click.echo(
        f"{output}: drafted from {made.sample_rows:,} of {made.total_rows:,} rows of {source}: "
        f"id {made.dataset['id_columns'][0]}, event time {made.dataset['event_time']}, label "
        f"from {made.dataset['target']['column']}, {len(features['categorical'])} categorical "
        f"and {len(features['numeric'])} numeric feature(s), {len(made.left_out)} column(s) "
        f"left out; check every commented guess, then `loopline --params {output} ingest`"
    )
