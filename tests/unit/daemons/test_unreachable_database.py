"""A worker whose database cannot be reached at all: it warns, backs off, and stops cleanly when asked."""

from __future__ import annotations

import logging
import socket
import threading
import time

from datamgmt.daemons.common import work
from tests.unit.daemons.toy import ToyDaemon


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_worker_without_its_database_backs_off_and_stops_cleanly(caplog):
    daemon = ToyDaemon(
        "toy-unreachable", db_url=f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/none"
    )
    stop = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            work(daemon, stop, batch=10, once=False, sleep_max=60)
        except BaseException as exc:  # noqa: BLE001 - the test reports whatever escaped the loop
            failures.append(exc)

    caplog.set_level(logging.INFO, logger="datamgmt.daemons")
    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(3.5)
    assert worker.is_alive()
    stop.set()
    worker.join(timeout=30)
    assert not worker.is_alive() and failures == []
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "datamgmt.daemons.toy"]
    failed = [m for m in messages if m == (logging.WARNING, "batch failed, retried next cycle")]
    # Back-off of 1 s, then 2 s: two or three attempts in 3.5 s, not a spin.
    assert 2 <= len(failed) <= 3, messages
    assert not [m for m in messages if m[0] >= logging.ERROR]
