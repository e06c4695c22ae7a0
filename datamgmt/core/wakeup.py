"""Wake-ups: a daemon asleep on an empty queue wakes as soon as work for it is committed.

A worker that finds its queue empty sleeps, backing off up to ``[daemons] sleep_max`` (60 s by
default), so work committed during the sleep used to wait for it to end: a rule too large to
apply in its request waited up to a minute for the judge-injector.  On PostgreSQL the
transaction that queues the work also sends a NOTIFY on the queue's channel, which PostgreSQL
delivers when, and only if, that transaction commits; each daemon process LISTENs on its
queue's channel over one connection of its own (:class:`Listener`) and ends its workers'
sleep.  The queue stays the truth and the daemons still poll, so a notification lost with a
connection costs only the wait it would have saved.  SQLite has no such channel: there the
sleep runs out as before.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from psycopg import sql
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from datamgmt.core.db.session import get_engine, is_postgresql
from datamgmt.core.workqueue import WorkQueue

log = logging.getLogger(__name__)

#: How often a listener looks at its stop event while no notification comes, and how long it
#: waits before connecting again after losing its connection.
POLL_SECONDS = 1.0


def channel(queue: WorkQueue) -> str:
    """The NOTIFY channel of a queue (an identifier PostgreSQL folds to lower case)."""
    return f"datamgmt_{queue.name}"


def notify(session: Session, queue: WorkQueue) -> None:
    """Wake the daemons of ``queue`` when this transaction commits (PostgreSQL; nothing on SQLite).

    PostgreSQL folds identical notifications of one transaction into one, so calling this once
    per queued item costs one message."""
    if is_postgresql(session):
        session.execute(select(func.pg_notify(channel(queue), "")))


def listen(db_url: str | None, queue: WorkQueue, stop: threading.Event) -> threading.Event | None:
    """Start a :class:`Listener` for ``queue`` on a PostgreSQL catalogue and return the event it
    sets; None on SQLite, where there is nothing to listen to."""
    if get_engine(db_url).dialect.name != "postgresql":
        return None
    wake = threading.Event()
    Listener(db_url, queue, wake, stop).start()
    return wake


class Listener:
    """One connection LISTENing on a queue's channel; sets ``wake`` at each notification.

    Runs in a thread of its own until ``stop`` is set, and sets ``wake`` then too, so workers
    sleeping on ``wake`` see the stop at once.  A lost connection is logged and opened again
    after :data:`POLL_SECONDS`; meanwhile the workers' sleep runs out as if nobody listened.
    """

    def __init__(self, db_url: str | None, queue: WorkQueue, wake: threading.Event, stop: threading.Event):
        self.db_url = db_url
        self.channel = channel(queue)
        self.wake = wake
        self.stop = stop
        #: Set once the channel is listened to (for tests and the first connection's wait).
        self.listening = threading.Event()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name=f"listen-{self.channel}", daemon=True)
        thread.start()
        return thread

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # any driver error: the connection is gone, open another
                self.listening.clear()
                log.warning(
                    "wake-ups lost, listening again shortly",
                    extra={"fields": {"channel": self.channel, "error": str(exc)[:200]}},
                )
                self.stop.wait(POLL_SECONDS)
        self.wake.set()

    def _listen(self) -> None:
        connection = _dedicated_connection(self.db_url)
        try:
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            self.listening.set()
            while not self.stop.is_set():
                for _ in connection.notifies(timeout=POLL_SECONDS, stop_after=1):
                    self.wake.set()
        finally:
            connection.close()


def _dedicated_connection(db_url: str | None) -> Any:
    """A psycopg connection in autocommit, made as the engine makes its own (same URL and
    options) but outside its pool: a listening connection is never given back."""
    pooled = get_engine(db_url).raw_connection()
    connection: Any = pooled.driver_connection
    pooled.detach()
    connection.rollback()
    connection.autocommit = True
    return connection
