"""``datamgmt-server``: serve the API under gunicorn, configured by ``etc/gunicorn.conf.py``,
or under granian with ``--server granian`` (``[api] server``; see :mod:`datamgmt.api.granian_server`).

The settings are read from the package (``datamgmt/etc/``, a link to ``etc/`` in a checkout,
the file itself in a wheel), so an installed wheel runs with them outside any checkout.

With ``--embedded`` the same process tree also runs the daemons: a supervisor thread in the
gunicorn master keeps one daemon child alive (see :mod:`datamgmt.embedded`), and ``/health``
expects every embedded daemon's heartbeat.
"""

from __future__ import annotations

import atexit
import logging
import os
import runpy
import shutil
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import click
from flask import Flask
from gunicorn.app.base import BaseApplication

from datamgmt.config import get_config

log = logging.getLogger(__name__)
#: The HTTP servers ``datamgmt-server`` can run the API under (``[api] server``).
SERVERS = ("gunicorn", "granian")


def default_settings() -> dict[str, Any]:
    """The module-level names of the shipped ``gunicorn.conf.py`` (settings and hooks)."""
    with resources.as_file(resources.files("datamgmt") / "etc" / "gunicorn.conf.py") as path:
        return runpy.run_path(str(path))


class GunicornServer(BaseApplication):  # type: ignore[misc]  # gunicorn ships no types: its base class is Any
    """gunicorn with our config file, command-line overrides, and the app built in each worker."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides
        super().__init__()

    def load_config(self) -> None:
        """The shipped settings, then ``GUNICORN_CMD_ARGS``, then ``--host``/``--port``/``--workers``
        (or ``[api]``): gunicorn's own command line applies the environment the same way."""
        given = vars(self.cfg.parser().parse_args(self.cfg.get_cmd_args_from_env()))
        from_environment = {name: value for name, value in given.items() if value is not None}
        for name, value in {**default_settings(), **from_environment, **self.overrides}.items():
            if name in self.cfg.settings and value is not None:
                self.cfg.set(name, value)

    def load(self) -> Flask:
        from datamgmt.api.app import create_app

        return create_app()


def share_metrics_between_processes() -> str | None:
    """Point ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory unless the operator chose one,
    so ``/metrics`` aggregates every gunicorn worker (and the embedded daemons) by default.

    It must happen before any module of this process imports ``prometheus_client``, which fixes
    its storage on import: that is why the app and the embedded supervisor are imported lazily.
    An operator's own directory must be emptied before each start (docs/metrics.md).
    Returns the directory made here (removed again at exit), or None."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        return None
    directory = tempfile.mkdtemp(prefix="datamgmt-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    return directory


def _remove_in(pid: int, directory: str) -> None:
    """Remove ``directory`` at the exit of process ``pid`` only: gunicorn workers are forks that
    run the master's exit handlers when they stop, while the master and the others still write."""
    if os.getpid() == pid:
        shutil.rmtree(directory, ignore_errors=True)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default=None, help="address to bind (default [api] host)")
@click.option("--port", type=int, default=None, help="port to bind (default [api] port)")
@click.option("--workers", type=int, default=None, help="worker processes (default [api] workers)")
@click.option(
    "--server",
    "server_name",
    type=click.Choice(SERVERS),
    default=None,
    help="HTTP server (default [api] server: gunicorn)",
)
@click.option("--embedded", is_flag=True, help="also supervise the daemons in this process tree")
def main(
    host: str | None, port: int | None, workers: int | None, server_name: str | None, embedded: bool
) -> None:
    """Serve the REST API."""
    made = share_metrics_between_processes()
    if made:
        atexit.register(_remove_in, os.getpid(), made)
    from datamgmt.daemons import logs

    logs.configure()  # the app's own records in the daemons' format; gunicorn keeps its access log
    # Import the app in the master, as before forking: workers start serving at once.
    import datamgmt.api.app  # noqa: F401

    config = get_config()
    host, port = host or config.get("api", "host"), port or config.get_int("api", "port")
    run = _server(
        server_name or config.get("api", "server"), host, port, workers or config.get_int("api", "workers")
    )
    if not embedded:
        run()
        return
    from datamgmt.core.db.session import dispose_engines
    from datamgmt.embedded import EMBEDDED_DAEMONS, DaemonSupervisor, ensure_local_rses

    ensure_local_rses(Path(config.get("storage", "root")))
    dispose_engines()  # the master serves nothing: its workers open their own connections
    # /health (in the gunicorn workers, which inherit the environment) expects these daemons.
    os.environ.setdefault("DATAMGMT_API_HEALTH_DAEMONS", ",".join(EMBEDDED_DAEMONS))
    # Published landing pages point at the address served here unless [api] base_url says otherwise.
    if not config.get("api", "base_url"):
        os.environ["DATAMGMT_API_BASE_URL"] = f"http://{host}:{port}"
    supervisor = DaemonSupervisor()
    supervisor.start()
    try:
        run()
    finally:
        supervisor.stop()


def _server(name: str, host: str, port: int, workers: int) -> Callable[[], None]:
    """What serves the API until it is stopped: ``name`` is ``[api] server`` or ``--server``."""
    if name == "gunicorn":
        return GunicornServer({"bind": f"{host}:{port}", "workers": workers}).run  # type: ignore[no-any-return]
    if name == "granian":
        from datamgmt.api import granian_server

        return lambda: granian_server.serve(host, port, workers)
    raise click.ClickException(f"[api] server must be one of {', '.join(SERVERS)}, not {name!r}")
