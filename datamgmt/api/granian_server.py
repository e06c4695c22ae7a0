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

A worker is told to stop by SIGTERM, which the kernel may hand to any of its threads.  granian's
handler is a Python one, and Python runs it only in the main thread, which sleeps in
``Event.wait`` until the handler has run: a SIGTERM taken by one of granian's Rust threads
left the worker serving until its parent killed it ``GRACEFUL_SECONDS`` later (2 of 36
stops, in tests).  :func:`forward_stop_signals` wakes the main thread to run it.
"""

from __future__ import annotations

import os
import signal
import threading
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
#: The signals granian's workers stop on.
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
#: What wakes a worker's main thread to run a stop signal's handler another thread received.
WAKE_SIGNAL = signal.SIGUSR2


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
    forward_stop_signals()
    return app


def forward_stop_signals() -> None:
    """Wake the main thread whenever a stop signal arrives, whichever thread the kernel gave it to.

    Python's C-level handler, in whatever thread it runs, marks the signal pending and writes its
    number to the wakeup file descriptor; the thread started here reads it and sends
    :data:`WAKE_SIGNAL` to the main thread, which interrupts its wait, so it runs the pending
    handlers, granian's among them, once each.  (Calling granian's handler from this thread
    instead would run it twice: its shutdown channel takes two sets and blocks on a third while
    holding the GIL.)  Must be called from the main thread, as ``signal.set_wakeup_fd`` requires.
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    signal.signal(WAKE_SIGNAL, _interrupt_only)
    threading.Thread(
        target=_wake_main_thread, args=(read_fd, threading.get_ident()), name="stop-signals", daemon=True
    ).start()


def _interrupt_only(_signum: int, _frame: object) -> None:
    """WAKE_SIGNAL's handler: its delivery interrupts the main thread's wait; nothing else to do."""


def _wake_main_thread(read_fd: int, main: int) -> None:
    while numbers := os.read(read_fd, 64):
        if STOP_SIGNALS.intersection(numbers):
            signal.pthread_kill(main, WAKE_SIGNAL)


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
