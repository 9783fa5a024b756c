"""What every `loopline` command shares: the group, its options, the params loaded once."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tasks.core.runtime import setup_logging

if TYPE_CHECKING:
    from tasks.core.config import Params


class App:
    """The params path, loaded once on first use."""

    def __init__(self, params_path: Path):
        self.params_path = params_path

    @functools.cached_property
    def params(self) -> Params:
        from tasks.core.config import load_params

        return load_params(self.params_path)


pass_app = click.make_pass_decorator(App)


def checked_date(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse anything but a real YYYY-MM-DD before a path is built from it."""
    if value is None:
        return None
    from tasks.core.dates import parse_date
    from tasks.core.errors import LooplineError

    try:
        return parse_date(value).isoformat()
    except LooplineError as exc:  # the option's name comes from click: keep the value and rule
        raise click.BadParameter(f"{value!r}: {str(exc).split(': ', 1)[-1]}") from None


def prefect_defaults() -> None:
    """Project-local Prefect home and a start-up timeout that fits 2 cores (see
    docs/operations.md, "Prefect start-up")."""
    os.environ.setdefault("PREFECT_HOME", str(Path(".prefect").resolve()))
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


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
