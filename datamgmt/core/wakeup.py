"""Wake-ups: a daemon asleep on an empty queue wakes as soon as work for it is committed.

A worker that finds its queue empty sleeps, backing off up to ``[daemons] sleep_max`` (60 s by
default, 5 s in the embedded service), so work committed during the sleep used to wait for it
to end: a rule too large to apply in its request waited up to a minute for the judge-injector,
new transfers as long for the conveyor-submitter.  Now the transaction that queues the work
also says so, in a way that takes effect when, and only if, it commits:

* on PostgreSQL, a NOTIFY on the queue's channel; each daemon process LISTENs on it over one
  connection of its own (:class:`ChannelListener`).  The channel is the database's, so in a
  multi-VO instance (one schema per VO) every VO's daemons of the queue wake, and those with
  nothing to do sleep again;
* on SQLite, one byte appended to a wake file beside the catalogue after the commit; each
  daemon process looks at the file's size every :data:`FILE_POLL_SECONDS`
  (:class:`FileListener`), one ``stat(2)`` each time.  The embedded service runs its API and
  daemons on one host, which is the only shape in which SQLite serves several processes.

Either way the listener ends its workers' sleep.  The queue stays the truth and the daemons
still poll, so a wake-up lost with a connection costs only the wait it would have saved.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from psycopg import sql
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from datamgmt.core.cache import FileGeneration
from datamgmt.core.db.session import get_engine
from datamgmt.core.workqueue import WorkQueue

log = logging.getLogger(__name__)

#: How often a channel listener looks at its stop event while no notification comes, and how
#: long a listener waits before trying again after losing its connection or file.
POLL_SECONDS = 1.0
#: The longest wait between two tries while the source stays lost (a database that is down).
RETRY_MAX_SECONDS = 30.0
#: How often a file listener looks at its wake file: the longest a SQLite wake-up waits.
FILE_POLL_SECONDS = 0.2
#: ``Session.info`` key: the wake files to renew when the session's transaction commits.
_WAKE_FILES = "datamgmt_wake_files"


def channel(queue: WorkQueue) -> str:
    """The NOTIFY channel of a queue (an identifier PostgreSQL folds to lower case)."""
    return f"datamgmt_{queue.name}"


def wake_file(engine: Engine, queue: WorkQueue) -> FileGeneration | None:
    """The wake file of ``queue`` beside a SQLite catalogue; None for one in memory."""
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    path = Path(database)
    return FileGeneration(path.with_name(f"{path.name}.wake-{queue.name}"))


def notify(session: Session, queue: WorkQueue) -> None:
    """Wake the daemons of ``queue`` when this transaction commits.

    Calling it once per queued item is cheap: PostgreSQL folds identical notifications of one
    transaction into one, and a wake file is renewed once per commit."""
    engine = session.get_bind().engine
    if engine.dialect.name == "postgresql":
        session.execute(select(func.pg_notify(channel(queue), "")))
        return
    file = wake_file(engine, queue)
    if file is not None:
        session.info.setdefault(_WAKE_FILES, {})[file.path] = file


@event.listens_for(Session, "after_commit")
def _renew_wake_files(session: Session) -> None:
    for file in session.info.pop(_WAKE_FILES, {}).values():
        try:
            file.renew()
        except OSError as exc:  # the commit stands; the daemons find the work when they wake
            log.warning("a wake file could not be renewed: %s", exc)


@event.listens_for(Session, "after_rollback")
def _forget_wake_files(session: Session) -> None:
    session.info.pop(_WAKE_FILES, None)


def listen(db_url: str | None, queue: WorkQueue, stop: threading.Event) -> threading.Event | None:
    """Start the listener of ``queue`` on this catalogue and return the event it sets; None for
    a SQLite catalogue in memory, which no other process can reach."""
    listener = listener_for(db_url, queue)
    if listener is None:
        return None
    listener.start(stop)
    return listener.wake


def listener_for(db_url: str | None, queue: WorkQueue) -> Listener | None:
    """The listener of ``queue`` that suits the catalogue (not started): the channel on
    PostgreSQL, the wake file on SQLite; None for a SQLite catalogue in memory."""
    engine = get_engine(db_url)
    if engine.dialect.name == "postgresql":
        return ChannelListener(db_url, queue)
    file = wake_file(engine, queue)
    return None if file is None else FileListener(file)


class Listener(ABC):
    """Sets ``wake`` whenever work for its queue is committed, in a thread of its own.

    It runs until the ``stop`` it was started with is set, and sets ``wake`` then too, so
    workers sleeping on ``wake`` see the stop at once.  A lost connection or file is logged and
    tried again after :data:`POLL_SECONDS`, then ever less often up to :data:`RETRY_MAX_SECONDS`
    while it stays lost; meanwhile the workers' sleep runs out as if nobody listened.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.wake = threading.Event()
        #: Set while the listener is watching; a loss while it was set is retried at once.
        self.listening = threading.Event()

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(stop,), name=f"listen-{self.name}", daemon=True)
        thread.start()
        return thread

    def _run(self, stop: threading.Event) -> None:
        pause = POLL_SECONDS
        while not stop.is_set():
            try:
                self.watch(stop)
            except Exception as exc:  # any driver or file error: start over
                pause = POLL_SECONDS if self.listening.is_set() else min(2 * pause, RETRY_MAX_SECONDS)
                self.listening.clear()
                log.warning(
                    "wake-ups lost, listening again shortly",
                    extra={"fields": {"listener": self.name, "error": str(exc)[:200], "retry_in": pause}},
                )
                stop.wait(pause)
        self.wake.set()

    @abstractmethod
    def watch(self, stop: threading.Event) -> None:
        """Set ``wake`` at each wake-up until ``stop``; raise if the source is lost."""


class ChannelListener(Listener):
    """One PostgreSQL connection LISTENing on the queue's channel."""

    def __init__(self, db_url: str | None, queue: WorkQueue) -> None:
        super().__init__(channel(queue))
        self.db_url = db_url

    def watch(self, stop: threading.Event) -> None:
        connection = _dedicated_connection(self.db_url)
        try:
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.name)))
            self.listening.set()
            while not stop.is_set():
                for _ in connection.notifies(timeout=POLL_SECONDS, stop_after=1):
                    self.wake.set()
        finally:
            connection.close()


class FileListener(Listener):
    """The size of the queue's wake file, looked at every :data:`FILE_POLL_SECONDS`."""

    def __init__(self, file: FileGeneration) -> None:
        super().__init__(file.path.name)
        self.file = file

    def watch(self, stop: threading.Event) -> None:
        seen = self.file.current()
        self.listening.set()
        while not stop.wait(FILE_POLL_SECONDS):
            now = self.file.current()
            if now != seen:
                seen = now
                self.wake.set()


def _dedicated_connection(db_url: str | None) -> Any:
    """A psycopg connection in autocommit, made as the engine makes its own (same URL and
    options) but outside its pool: a listening connection is never given back."""
    pooled = get_engine(db_url).raw_connection()
    connection: Any = pooled.driver_connection
    pooled.detach()
    connection.rollback()
    connection.autocommit = True
    return connection
