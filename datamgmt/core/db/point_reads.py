"""One-row reads by key, run on a bare DB-API cursor when the unit of work only reads.

``GET /dids/{scope}/{name}`` is the commonest call of all, and through a SQLAlchemy session
its one SELECT cost more than everything else in the request: measured in process on
PostgreSQL, 0.35 ms for the session's connection (checkout, isolation level set and reset,
commit, checkin) and the execution context around a statement whose round trip takes
0.05 ms.  A :class:`PointRead` compiles its statement once per dialect and, in a read-only
unit that has not begun (no statement has run, so there is no snapshot to share), runs it on
a pooled connection's own cursor in autocommit: at READ COMMITTED, and in SQLite's
autocommit, one SELECT reads exactly what it would read inside a transaction of its own.

Anything else runs the statement through the session as before: a unit that writes (it must
see its own changes), or one already in a transaction.  A failure on the bare cursor is not
translated here: the connection goes back to the pool (or is discarded, if the driver found
it broken) and the statement runs once more through the session, where a lost database or a
refused value fails exactly as any statement does (core/db/session.py).  Running a read twice
changes nothing.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import Engine, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from datamgmt.core.db.readers import READ_ONLY

_Processor = Callable[[Any], Any] | None


class _Compiled:
    """``statement`` as ``dialect`` runs it: SQL text, parameter order and result conversions."""

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        for bind in compiled.binds.values():
            if bind.type.dialect_impl(dialect).bind_processor(dialect) is not None:
                raise TypeError(f"a point read's parameter {bind.key} needs conversion; bind plain values")
        self.sql = compiled.string
        self.order = tuple(compiled.positiontup or ()) if dialect.positional else None
        columns = list(statement.selected_columns)
        self.processors: list[_Processor] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        self.row = namedtuple("PointRow", [column.key for column in columns])  # type: ignore[misc]  # names known at run time

    def parameters(self, values: dict[str, Any]) -> dict[str, Any] | tuple[Any, ...]:
        return values if self.order is None else tuple(values[name] for name in self.order)

    def convert(self, raw: tuple[Any, ...]) -> Any:
        return self.row(
            *(
                value if convert is None else convert(value)
                for convert, value in zip(self.processors, raw, strict=True)
            )
        )


class PointRead:
    """A SELECT of at most one row by key, for the hottest read paths only.

    Its parameters are bound as given (strings, numbers): a statement whose parameters need
    a type's conversion is refused when first compiled.
    """

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def first(self, session: Session, **values: Any) -> Any:
        """The row (attributes named as the selected columns), or None."""
        engine = _idle_reader_engine(session)
        if engine is not None:
            compiled = self._for(engine.dialect)
            raw, ran = _on_bare_cursor(engine, compiled, values)
            if ran:
                return None if raw is None else compiled.convert(raw)
        return session.connection().execute(self.statement, values).first()

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _Compiled(self.statement, dialect)
        return compiled


def _idle_reader_engine(session: Session) -> Engine | None:
    """The engine of a read-only unit that has not begun, else None."""
    bind = session.get_bind()
    if session.in_transaction() or not isinstance(bind, Engine):
        return None
    return bind if bind.get_execution_options().get(READ_ONLY) else None


def _on_bare_cursor(engine: Engine, compiled: _Compiled, values: dict[str, Any]) -> tuple[Any, bool]:
    """Run on a pooled connection without a transaction; ``(None, False)`` when it failed."""
    pooled = engine.raw_connection()
    connection: Any = pooled.driver_connection
    # psycopg opens a transaction before a statement unless in autocommit; pysqlite's
    # connections are in autocommit already (isolation_level None, core/db/session.py).
    switch = isinstance(connection, psycopg.Connection) and not connection.autocommit
    try:
        if switch:
            connection.autocommit = True
        cursor = connection.cursor()
        cursor.execute(compiled.sql, compiled.parameters(values))
        return cursor.fetchone(), True
    except Exception:  # noqa: BLE001  # run again through the session, which translates it
        return None, False
    finally:
        if _broken(connection):
            pooled.invalidate()
        elif switch:
            connection.autocommit = False
        pooled.close()


def _broken(connection: Any) -> bool:
    """A psycopg connection the server or network dropped (a refused value leaves it usable)."""
    return isinstance(connection, psycopg.Connection) and connection.closed
