"""`loopline api`: the model behind an alias over HTTP (tasks/serving/online, docs/serving.md)."""

from __future__ import annotations

import click

from flows.cli.app import App, cli, pass_app


@cli.command()
@click.option("--host", help="Listen address (default: api.host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: api.port).")
@click.option(
    "--no-batching",
    is_flag=True,
    help="Score each request alone (api.max_batch_rows 1): the benchmark's baseline.",
)
@pass_app
def api(app: App, host: str | None, port: int | None, no_batching: bool) -> None:
    """Serve the model behind api.alias (champion) with dynamic batching, following the alias:
    a promotion or rollback swaps the version without a restart. Ctrl-C stops it."""
    import uvicorn

    from tasks.core.config import override
    from tasks.serving.online.app import create_app

    changes = {"host": host, "port": port, "max_batch_rows": 1 if no_batching else None}
    params = override(
        app.params, "loopline api", "api", **{k: v for k, v in changes.items() if v is not None}
    )
    # loop and http "auto": uvloop and httptools (dependencies) where the platform has them.
    uvicorn.run(
        create_app(params),
        host=params.api.host,
        port=params.api.port,
        log_level="warning",
        access_log=False,
    )
