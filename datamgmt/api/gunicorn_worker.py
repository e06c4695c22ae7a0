"""gunicorn's threaded worker, with a kept-alive connection served by the thread that answered it.

gunicorn's ``gthread`` worker hands every request on a kept-alive connection over twice: its
main thread polls the socket and submits it to the thread pool, and the pool thread, once it has
answered, queues the connection back to the main thread, which registers it with the poller
again.  On this project's 2-core machines serving each request from the thread that answered
the last one saved 0.15 to 0.25 ms a small call (docs/performance.md, seventh session).

Here the thread that answered a request waits a moment (:data:`LINGER`) for the connection's
next one and serves it itself: a client sending calls one after another (rucio-clients, a
script) keeps one thread and never crosses the poller.  A connection that stays quiet longer
goes back to the poller exactly as under ``gthread``.  A thread lingers only while another
thread of the pool is idle, so connections that wait cannot delay a new connection's request
by more than :data:`LINGER`.

While such a thread is the only one of its worker with a request in hand, it first busy-waits
for the next request for ``[api] busy_poll_us`` before it sleeps in ``poll``.  A vCPU that
goes idle between two calls runs the next one slower: on this project's 2-core VMs a GET of one
DID took 0.37 ms of the app's time after 0.3 ms asleep against 0.27 ms after 0.3 ms of busy
waiting (docs/performance.md, tenth session).  The wait spends CPU only in a worker that has
nothing else to do, only while the host's load, less the worker's own busy-waiting, leaves a CPU
idle (:class:`SpinGate`), and releases the GIL at each look at the socket.  Under the same rule a
thread busy-waits for PostgreSQL's answer to each of its statements, for ``[api]
db_busy_poll_us`` (the worker is the process's ``BusyWaitPolicy``, core/db/busy_wait.py).
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

from datamgmt.config import get_config
from datamgmt.core.db import busy_wait
from datamgmt.core.db.busy_wait import until_readable

#: How long (seconds) a thread waits on its connection for the next request before giving the
#: connection back to the poller.  Clients that send their next call within a millisecond or two
#: of the last answer are the ones this serves; longer pauses lose nothing but this wait.
LINGER = 0.02
#: Seconds between two looks at the host's load, which decides whether threads may busy-wait.
LOAD_CHECK_INTERVAL = 1.0


def cpu_to_spare(own_load: float = 0.0) -> bool:
    """Whether the host's load over the last minute, less ``own_load`` (what this worker's own
    busy-waiting adds to it), leaves a CPU of this process idle: busy-waiting on a host whose CPUs
    are all taken would slow whatever else runs there (other workers, the daemons, the database)."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # the platform does not tell: assume the CPUs are taken
        return False
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return load - own_load < cpus


class SpinGate:
    """Whether a worker's threads may busy-wait now: :func:`cpu_to_spare`, asked at most once per
    :data:`LOAD_CHECK_INTERVAL`, with the share of a CPU the worker spent busy-waiting since the
    last look taken off the load.

    A busy-waiting thread is a runnable task, so it counts in the load average itself: on a 2-CPU
    host, a client calling back to back plus its database and the busy-waiting thread could reach
    a load of 2 and turn the busy-waiting off until the load fell, about a minute later (measured
    here the load stayed at 0.7-1.3 with one client; docs/performance.md, eleventh session).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._spun = 0.0
        self._since = clock()
        self._next_check = self._since
        self._open = False

    def spent(self, seconds: float) -> None:
        """Count ``seconds`` of busy-waiting by one of the worker's threads."""
        self._spun += seconds

    def is_open(self) -> bool:
        now = self._clock()
        if now >= self._next_check:
            own = min(1.0, self._spun / (now - self._since)) if now > self._since else 0.0
            self._spun, self._since, self._next_check = 0.0, now, now + LOAD_CHECK_INTERVAL
            self._open = cpu_to_spare(own)
        return self._open


class KeepServingWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn ships no types
    """``gthread`` whose pool threads keep serving a kept-alive connection while it is busy."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._spin = get_config().get_int("api", "busy_poll_us") / 1_000_000
        self._db_spin = get_config().get_int("api", "db_busy_poll_us") / 1_000_000
        self._gate = SpinGate()

    def init_process(self) -> None:
        """In the worker's own process: its statements wait for PostgreSQL's answers as its
        threads wait for requests (core/db/busy_wait.py); then gthread's start."""
        busy_wait.set_policy(self)
        super().init_process()

    def handle(self, conn: Any) -> Any:
        """Serve the connection's requests while they follow each other closely; the result is
        what gthread's ``handle`` returned for the last one (keep alive, close, or defer)."""
        with self._busy_lock:
            self._busy += 1
        try:
            keep = super().handle(conn)
            while keep is True and self.alive and self._may_linger() and self._next_request_comes(conn):
                keep = super().handle(conn)
            return keep
        finally:
            with self._busy_lock:
                self._busy -= 1

    def _may_linger(self) -> bool:
        """Whether another pool thread is idle, free to take a new connection's request."""
        return self._busy < self.cfg.threads  # type: ignore[no-any-return]

    def _next_request_comes(self, conn: Any) -> bool:
        """Whether the connection has bytes to read, already buffered or arriving within LINGER
        (looked for without sleeping first, while no other thread of this worker is busy)."""
        if conn.parser.unreader.buf.getvalue():
            return True
        poller = select.poll()
        poller.register(conn.sock, select.POLLIN)
        if self._spin and self._gate.is_open():
            self._gate.spent(until_readable(poller, self._spin, self._alone))
        return bool(poller.poll(LINGER * 1000))

    def _alone(self) -> bool:
        """Whether the calling thread is the only one of this worker with a request in hand."""
        return self._busy == 1

    def allowance(self) -> float:
        """How long a statement's thread busy-waits for PostgreSQL's answer (``BusyWaitPolicy``):
        ``[api] db_busy_poll_us`` while it is the worker's only busy thread and the gate is open."""
        return self._db_spin if self._alone() and self._gate.is_open() else 0.0

    def spent(self, seconds: float) -> None:
        self._gate.spent(seconds)
