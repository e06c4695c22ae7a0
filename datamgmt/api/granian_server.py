"""``datamgmt-server --server granian``: the same app under granian, a server written in Rust.

gunicorn's threaded worker parses HTTP in Python and hands every keep-alive request from its
poller to a thread and back: about 0.24 ms of server CPU per request on the benchmark machine
for a WSGI hello-world, more than our app spends on ``GET /ping`` (0.09 ms).  granian parses
and writes HTTP in Rust and calls the WSGI app on a pool of blocking threads, 0.04 to 0.06 ms
for the same hello-world (docs/performance.md), so every small call costs less.

What the gunicorn settings (``etc/gunicorn.conf.py``) do is done here too: ``[api] workers``
processes of ``THREADS`` threads each, the placement solver loaded before a worker serves, the
same access line per request on standard output, and /metrics aggregated over every worker through
``PROMETHEUS_MULTIPROC_DIR`` (the API keeps no live gauges, so a dead worker leaves nothing to
drop).  gunicorn stays the default: it is what the scale-out deployment documents and what
``GUNICORN_CMD_ARGS`` tunes.
"""

from __future__ import annotations

from typing import Any

from granian.constants import Interfaces
from granian.http import HTTP1Settings
from granian.server import Server

from datamgmt.api.access_log import AccessLines

#: Threads calling the app in each worker, as gunicorn's ``threads`` (streams hold one each).
THREADS = 8
#: Seconds a connection may take to send a request's headers, idle keep-alive time included:
#: gunicorn's ``keepalive``, and what bounds a client that opens connections and sends nothing.
KEEPALIVE_SECONDS = 5
#: Seconds a stopping worker gets to finish its requests, as gunicorn's ``graceful_timeout``.
GRACEFUL_SECONDS = 30


def load_app(_target: str) -> Any:
    """Build the app in a worker, with the placement solver's compiled kernel loaded first,
    wrapped to write gunicorn's access lines (granian's own differ and cost more); what was
    built is then left out of garbage collections (datamgmt/startup.py)."""
    from datamgmt.api.app import create_app
    from datamgmt.core.placement.solver import warm_up
    from datamgmt.startup import freeze_startup_objects

    warm_up()
    app = AccessLines(create_app())
    freeze_startup_objects()
    return app


def serve(host: str, port: int, workers: int) -> None:
    """Serve the API until SIGINT or SIGTERM; returns when every worker has stopped."""
    server = Server(
        "datamgmt.api.app:create_app",  # what load_app builds; granian only names it in its logs
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        websockets=False,
        workers=workers,
        blocking_threads=THREADS,
        backpressure=THREADS,
        http1_settings=HTTP1Settings(header_read_timeout=KEEPALIVE_SECONDS * 1000),
        respawn_failed_workers=True,
        workers_kill_timeout=GRACEFUL_SECONDS,
    )
    server.serve(target_loader=load_app)
