"""Engines, sessions and the one-transaction-per-call helper.

Every public core function takes a ``Session``; callers (API requests, daemon
batches) open exactly one transaction with :func:`transaction` so a failure rolls
back everything the call did.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from datamgmt.config import get_config
from datamgmt.exceptions import DatabaseException, DatamgmtError, Duplicate, InputValidationError

#: Execution option marking a transaction that only reads.
READ_ONLY = "datamgmt_read_only"

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_factories: dict[str, sessionmaker[Session]] = {}


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
        return engine
    return create_engine(
        url,
        echo=echo,
        pool_size=config.get_int("database", "pool_size"),
        max_overflow=config.get_int("database", "max_overflow"),
        pool_pre_ping=True,
    )


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    engine = get_engine(url)
    key = str(engine.url)
    with _lock:
        factory = _factories.get(key)
        if factory is None:
            factory = sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
            _factories[key] = factory
        return factory


@contextmanager
def transaction(url: str | None = None, read_only: bool = False) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error.

    ``read_only`` units never wait for writers on SQLite (and must not write).  Database
    driver errors become :class:`DatamgmtError` subclasses so that callers see one
    hierarchy; the original is chained for the logs.
    """
    session = session_factory(url)()
    if read_only:
        session.connection(execution_options={READ_ONLY: True})
    try:
        yield session
        session.commit()
    except DatamgmtError:
        session.rollback()
        raise
    except DataError as exc:
        # The database refused a value (a NUL byte, a number out of range): bad input, not a fault.
        session.rollback()
        raise InputValidationError("a value in the request cannot be stored (invalid characters or range)") from exc
    except IntegrityError as exc:
        # Checks run before writes; reaching this means a concurrent writer won the same key.
        session.rollback()
        raise Duplicate("the object was created or changed concurrently; retry the request") from exc
    except DBAPIError as exc:
        session.rollback()
        raise DatabaseException(f"database error: {type(exc.orig).__name__}") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dispose_engines() -> None:
    """Close every pooled connection (tests, forks)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _factories.clear()


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
