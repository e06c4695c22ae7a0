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
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from datamgmt.core.db.bare_cursor import autocommit_cursor
from datamgmt.core.db.plans import READ_ONLY

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
        self.dialect = dialect
        self.types = [column.type.dialect_impl(dialect) for column in columns]
        self.processors: list[_Processor] | None = None  # known once a cursor describes the result
        self.row = namedtuple("PointRow", [column.key for column in columns])  # type: ignore[misc]  # names known at run time

    def parameters(self, values: dict[str, Any]) -> dict[str, Any] | tuple[Any, ...]:
        return values if self.order is None else tuple(values[name] for name in self.order)

    def converter(self, description: Sequence[Any]) -> Callable[[tuple[Any, ...]], Any]:
        """What turns a raw row into a named row of Python values.  Some conversions depend on
        the type the database sent (a NUMERIC's, on psycopg), as SQLAlchemy's own results do."""
        if self.processors is None:
            self.processors = [
                kind.result_processor(self.dialect, column[1])  # DB-API: item 1 is the type code
                for kind, column in zip(self.types, description, strict=True)
            ]
        processors, row = self.processors, self.row
        return lambda raw: row(
            *(
                value if convert is None else convert(value)
                for convert, value in zip(processors, raw, strict=True)
            )
        )


class PointRead:
    """A SELECT by key of one row (or of a few), for the hottest read paths only.

    Its parameters are bound as given (strings, numbers): a statement whose parameters need
    a type's conversion is refused when first compiled.
    """

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def first(self, session: Session, **values: Any) -> Any:
        """The row (attributes named as the selected columns), or None."""
        bare = self._bare(session, values, _first)
        if bare is not None:
            raw, convert = bare
            return None if raw is None else convert(raw)
        return session.connection().execute(self.statement, values).first()

    def all(self, session: Session, **values: Any) -> list[Any]:
        """Every row, for a read by key whose rows are few (one DID's metadata keys)."""
        bare = self._bare(session, values, _every)
        if bare is not None:
            raw, convert = bare
            return list(map(convert, raw))
        return list(session.connection().execute(self.statement, values))

    def _bare(
        self, session: Session, values: dict[str, Any], fetch: Callable[[Any], Any]
    ) -> tuple[Any, Callable[[tuple[Any, ...]], Any]] | None:
        """What ``fetch`` took on a bare cursor and the converter of its rows; None where the
        session must run the statement (a unit that is not an idle reader, or a failure)."""
        engine = _idle_reader_engine(session)
        if engine is None:
            return None
        compiled = self._for(engine.dialect)
        raw, description = _on_bare_cursor(engine, compiled, values, fetch)
        return None if description is None else (raw, compiled.converter(description))

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


def _first(cursor: Any) -> Any:
    return cursor.fetchone()


def _every(cursor: Any) -> Any:
    return cursor.fetchall()


def _on_bare_cursor(
    engine: Engine, compiled: _Compiled, values: dict[str, Any], fetch: Callable[[Any], Any]
) -> tuple[Any, Sequence[Any] | None]:
    """Run on a pooled connection without a transaction: what ``fetch`` took of the result and
    the cursor's description of it (empty once ``compiled`` knows its conversions); ``(None,
    None)`` when it failed."""
    try:
        with autocommit_cursor(engine) as cursor:
            cursor.execute(compiled.sql, compiled.parameters(values))
            # psycopg builds the description anew on each call (a column object per column,
            # about a quarter of a one-DID read's client time): only the first run needs it.
            return fetch(cursor), (cursor.description if compiled.processors is None else ())
    except Exception:  # noqa: BLE001  # run again through the session, which translates it
        return None, None
