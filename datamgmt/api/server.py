"""``datamgmt-server``: serve the API in the foreground."""

from __future__ import annotations

import click

from datamgmt.api.app import create_app
from datamgmt.config import get_config


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default=None, help="address to bind (default [api] host)")
@click.option("--port", type=int, default=None, help="port to bind (default [api] port)")
def main(host: str | None, port: int | None) -> None:
    """Serve the REST API."""
    config = get_config()
    app = create_app()
    app.run(host=host or config.get("api", "host"), port=port or config.get_int("api", "port"), threaded=True)
