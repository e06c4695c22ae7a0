"""Engines, sessions and the one-transaction-per-call helper.

Every public core function takes a ``Session``; callers (API requests, daemon
batches) open exactly one transaction with :func:`transaction` so a failure rolls
back everything the call did.

A lost connection (a backend terminated, the server restarted) costs no ping per checkout:

* a pooled PostgreSQL connection whose socket became readable while it sat idle was hung up
  on (or, rarely, sent a notice) by the server, so the checkout replaces it: one ``poll(2)``,
  not a round trip (this replaces ``pool_pre_ping``);
* a disconnect that a statement meets invalidates the whole pool (SQLAlchemy's default), so
  every later unit of work starts on a fresh connection;
* the unit that met it fails with :class:`DatabaseUnavailable` (HTTP 503), marked
  ``retriable`` when running it again at once on a fresh connection cannot do anything
  twice: none of its statements had run, or it only read.  A write that failed while
  committing has an unknown outcome and is never retriable; one that failed before was
  rolled back by the server.  Any other OperationalError (a refused connect, a deadlock,
  a lock timeout) and an exhausted pool are 503 too, for the client to retry later.
"""

from __future__ import annotations

import hashlib
import os
import select
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from psycopg.types.array import ListBinaryDumper
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from datamgmt.config import get_config
from datamgmt.core.db.after_commit import run_pending
from datamgmt.core.db.busy_wait import BusyWaitingConnection
from datamgmt.core.db.plans import PROGRESS, READ_ONLY, UnitProgress, plan_and_send, unit_options
from datamgmt.exceptions import (
    DatabaseException,
    DatabaseUnavailable,
    DatamgmtError,
    Duplicate,
    InputValidationError,
)

#: ``info`` key of a session: which catalogue (which VO's database, see core/vo.py) it works on.
_CATALOGUE = "datamgmt_catalogue"

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_factories: dict[tuple[str, bool], sessionmaker[Session]] = {}


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    """WAL for concurrent readers, enforced foreign keys, and waiting instead of failing on locks."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see "begin" below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        # Writers BEGIN IMMEDIATE: they take the write lock up front and queue on
        # busy_timeout instead of deadlocking on a read-to-write upgrade.  Read-only units
        # BEGIN DEFERRED and read a WAL snapshot without waiting for any writer.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


def _hung_up_while_idle(dbapi_connection: Any) -> bool:
    """Whether the server closed (or spoke on) a connection that sat idle in the pool.

    Between units of work the client has read every reply, so a readable socket means the
    server hung up or sent an unrequested message; either way a fresh connection is safer.
    """
    if getattr(dbapi_connection, "closed", False):
        return True
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


#: ``record_info`` key marking a pool slot whose connection this checkout has just replaced.
_REPLACED = "datamgmt_replaced_at_checkout"


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Lists are only ever the arrays of keys_in and bulk inserts (core/keys.py, core/db/bulk.py):
        # sent in binary, a 5,000-string array costs a third of the text form, which psycopg
        # quotes and escapes element by element in Python.
        dbapi_connection.adapters.register_dumper(list, ListBinaryDumper)

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        # SQLAlchemy gives a checkout two tries and then fails with a bare InvalidRequestError
        # (a 500), so the connection opened to replace a dead one is not probed again: if the
        # database dropped it too, its first statement fails as unavailable (a 503), as any
        # other lost connection does.
        if record.record_info.pop(_REPLACED, False):
            return
        if _hung_up_while_idle(dbapi_connection):
            # The pool discards this connection and checks out (or opens) another.
            record.record_info[_REPLACED] = True
            raise DisconnectionError("the server closed this pooled connection while it was idle")

    if engine.dialect.driver == "psycopg":
        event.listen(engine, "do_connect", _connect_busy_waiting)
    plan_and_send(engine)


def _connect_busy_waiting(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> BusyWaitingConnection:
    # What SQLAlchemy's psycopg dialect would connect with these arguments, in the subclass.
    return BusyWaitingConnection.connect(*cargs, **cparams)


def _statement_ran(conn: Connection, *_args: Any) -> None:
    progress = conn.info.get(PROGRESS)
    if progress is not None:
        progress.ran = True


def _track_progress(session: Session, _transaction: SessionTransaction, connection: Connection) -> None:
    # The connection learns which unit it now serves, so its statements mark that unit.
    connection.info[PROGRESS] = session.info.setdefault(PROGRESS, UnitProgress())


def get_engine(url: str | None = None) -> Engine:
    """The engine for ``url`` (default: ``[database] url``), created once per process."""
    config = get_config()
    url = url or config.get("database", "url")
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create_engine(url)
            _engines[url] = engine
        return engine


def _create_engine(url: str) -> Engine:
    config = get_config()
    parsed = make_url(url)
    echo = config.get_bool("database", "echo")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False})
        _configure_sqlite(engine, config.get_int("database", "sqlite_busy_timeout_ms"))
    else:
        engine = create_engine(
            url,
            echo=echo,
            pool_size=config.get_int("database", "pool_size"),
            max_overflow=config.get_int("database", "max_overflow"),
        )
        if parsed.get_backend_name() == "postgresql":
            _configure_postgresql(engine)
    event.listen(engine, "after_cursor_execute", _statement_ran)
    return engine


def session_factory(url: str | None = None, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions on ``url``'s engine; ``read_only`` ones begin their transaction as readers.

    A read-only session is bound to the engine with the ``READ_ONLY`` option, so it checks a
    connection out and begins only when its first statement runs: a request answered from
    caches (a token and an RSE expression, say) costs no pool checkout, BEGIN or COMMIT.  On
    PostgreSQL it runs its plain SELECTs in autocommit, without BEGIN and COMMIT at all
    (:mod:`datamgmt.core.db.plans`).
    """
    engine = get_engine(url)
    key = (str(engine.url), read_only)
    with _lock:
        factory = _factories.get(key)
        if factory is None:
            options = unit_options(engine, read_only)
            bind = engine.execution_options(**options) if options else engine
            factory = sessionmaker(
                bind=bind,
                expire_on_commit=False,
                autoflush=False,
                info={_CATALOGUE: _catalogue_id(engine)},
            )
            event.listen(factory, "after_begin", _track_progress)
            _factories[key] = factory
        return factory


@contextmanager
def transaction(url: str | None = None, read_only: bool = False) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error.

    ``read_only`` units never wait for writers on SQLite (and must not write).  Database
    driver errors become :class:`DatamgmtError` subclasses so that callers see one
    hierarchy; the original is chained for the logs.  A lost or unreachable database is
    :class:`DatabaseUnavailable` (see the module docstring for when it is ``retriable``).
    """
    session = session_factory(url, read_only)()
    progress = session.info.setdefault(PROGRESS, UnitProgress())
    try:
        yield session
        if session.in_transaction():
            session.flush()
            progress.committing = True
            session.commit()
        else:
            # Nothing to commit (a unit answered from caches, by point reads, or whose one write
            # committed as it ran): SQLAlchemy's commit would begin and end an empty transaction
            # to find that out, about 0.1 ms of an admin call.  What waits for the commit runs now.
            run_pending(session)
    except DatamgmtError:
        session.rollback()
        raise
    except DataError as exc:
        # The database refused a value (a NUL byte, a number out of range): bad input, not a fault.
        session.rollback()
        raise InputValidationError(
            "a value in the request cannot be stored (invalid characters or range)"
        ) from exc
    except IntegrityError as exc:
        # Checks run before writes; reaching this means a concurrent writer won the same key.
        session.rollback()
        raise Duplicate("the object was created or changed concurrently; retry the request") from exc
    except (DBAPIError, PoolTimeout) as exc:
        _roll_back_after_failure(session)
        if is_unavailable(exc):
            raise _unavailable(exc, progress, read_only) from exc
        reason = type(exc.orig).__name__ if isinstance(exc, DBAPIError) else type(exc).__name__
        raise DatabaseException(f"database error: {reason}") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        # The pooled connection keeps a reference to this unit's progress until another unit
        # takes it; whatever uses it meanwhile must not inherit the one-write declaration.
        progress.one_write = False
        session.close()


def is_unavailable(exc: BaseException) -> bool:
    """A failure of the database or of the way to it (retry later), not of the statement.

    Lost connections, refused connects, shutdowns, deadlocks, lock and statement timeouts
    (the DB-API's OperationalError) and an exhausted pool.
    """
    if isinstance(exc, PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and (exc.connection_invalidated or isinstance(exc, OperationalError))


def _unavailable(exc: SQLAlchemyError, progress: UnitProgress, read_only: bool) -> DatabaseUnavailable:
    reason = type(exc.orig).__name__ if isinstance(exc, DBAPIError) else type(exc).__name__
    lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
    if lost and progress.committing and not read_only:
        return DatabaseUnavailable(
            f"The database connection was lost while committing ({reason}): the change may or may not"
            " have been saved; check before repeating it"
        )
    # Only a lost connection is worth an immediate second try: a refused connect (a restart under
    # way), a deadlock or a lock timeout would most likely fail the same way at once.
    return DatabaseUnavailable(
        f"The database is unavailable ({reason}); nothing was changed, retry the request",
        retriable=lost and (read_only or not progress.ran),
    )


def _roll_back_after_failure(session: Session) -> None:
    """Roll back; on a connection that died unnoticed, drop it instead (the server rolled back)."""
    try:
        session.rollback()
    except SQLAlchemyError:
        session.invalidate()


def dispose_engines() -> None:
    """Close every pooled connection (tests, forks)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _factories.clear()


#: Engines a forked child found in its parent's memory: kept, never used nor closed (see below).
_inherited: list[Engine] = []


def _forget_engines_after_fork() -> None:
    """In a forked child, start without the parent's engines.

    A pooled connection copied by ``fork`` is the very socket (or SQLite handle) the parent
    holds: two processes using it would interleave their statements and read each other's
    results (seen as ``DuplicatePreparedStatement`` when ``datamgmt-server --embedded``, which
    creates its RSEs in the master, forked two workers that both used the master's idle
    connection).  The child opens its own on first use.  The copies are kept referenced, so that
    nothing in the child closes them: closing would end the parent's session too.
    """
    global _lock
    _inherited.extend(_engines.values())
    _engines.clear()
    _factories.clear()
    _lock = threading.Lock()  # another thread of the parent may have held it at the fork


os.register_at_fork(after_in_child=_forget_engines_after_fork)


def _catalogue_id(engine: Engine) -> str:
    """A short name of the engine's catalogue, the same in every process configured alike."""
    return hashlib.sha256(engine.url.render_as_string(hide_password=True).encode()).hexdigest()[:16]


def catalogue_of(session: Session) -> str:
    """The catalogue ``session`` works on: caches of catalogue content key their entries by it,
    so that two VOs' catalogues (core/vo.py) never answer for each other."""
    known: str | None = session.info.get(_CATALOGUE)
    if known is None:
        known = _catalogue_id(session.get_bind().engine)
        session.info[_CATALOGUE] = known
    return known


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
