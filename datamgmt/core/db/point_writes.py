"""The write of a unit that makes one (core/db/plans.py), sent on a bare DB-API cursor.

An admin call (an RSE's attribute, a protocol, a limit, a scope) is one ``INSERT … SELECT``
that PostgreSQL commits as it runs it.  Through the session the unit still paid for a
transaction it never opened: the session's connection (checkout, isolation level set and
reset, commit, checkin) and the execution context cost about 0.5 ms of CPU a call in process,
more than the statement's round trip.  A :class:`PointWrite` runs such a write, when it is the
unit's first statement, on a pooled connection's own cursor in autocommit
(core/db/bare_cursor.py), as a :class:`~datamgmt.core.db.point_reads.PointRead` runs a read.

Nothing else changes for the unit: the write claims the unit's one write first (a second write
is refused before it is sent), a value PostgreSQL refuses fails as through the session, and a
connection lost once the write was sent leaves its outcome unknown, never retried
(core/db/session.py translates all three, from the same SQLAlchemy exceptions).  Anything else
runs through the session: another database, a unit that declared no one write, or one whose
transaction or connection is already open.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import psycopg
from sqlalchemy import ColumnDefault, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler

from datamgmt.core.db.bare_cursor import autocommit_cursor, is_broken
from datamgmt.core.db.plans import BEGINS_WITH_FIRST, PROGRESS, UnitProgress, claim_the_one_write


class PointWrite:
    """A compiled write, and how its parameters reach the driver without SQLAlchemy's execution
    context: the bind processors of its parameters' types, found once."""

    def __init__(self, compiled: SQLCompiler) -> None:
        dialect = compiled.dialect
        self.compiled = compiled
        # Columns the statement leaves out take their default, which SQLAlchemy's execution
        # context computes; a constant one is computed here, anything else needs the context.
        self._defaults = {
            column.key: column.default.arg
            for column in compiled.insert_prefetch
            if isinstance(column.default, ColumnDefault) and column.default.is_scalar
        }
        self._bare = len(self._defaults) == len(compiled.insert_prefetch) and not compiled.update_prefetch
        self._processors = {
            name: processor
            for bind, name in compiled.bind_names.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }

    def first(self, session: Session, values: dict[str, Any]) -> Any:
        """The first row the write returned (None: it wrote nothing), run on a bare cursor where
        the unit allows it, else on the session's connection."""
        engine = _idle_one_write_engine(session) if self._bare else None
        if engine is None:
            return session.connection().execute(self.compiled, values).first()  # type: ignore[call-overload]  # a Compiled runs as is; the stubs only admit statements
        return self._alone(engine, session.info[PROGRESS], values)

    def _alone(self, engine: Engine, progress: UnitProgress, values: dict[str, Any]) -> Any:
        parameters = self._parameters(values)
        with autocommit_cursor(engine) as cursor:
            claim_the_one_write(progress, self.compiled.string)
            progress.ran = True
            try:
                cursor.execute(self.compiled.string, parameters)
                return cursor.fetchone()
            except psycopg.Error as exc:  # the session's translation (core/db/session.py) takes it from here
                raise _as_sqlalchemy_error(
                    self.compiled.string, exc, lost=is_broken(cursor.connection)
                ) from exc

    def _parameters(self, values: dict[str, Any]) -> MutableMapping[str, Any]:
        parameters = self.compiled.construct_params({**self._defaults, **values})
        for name, processor in self._processors.items():
            parameters[name] = processor(parameters[name])
        return parameters


def _as_sqlalchemy_error(statement: str, exc: psycopg.Error, lost: bool) -> BaseException:
    """``exc`` as SQLAlchemy raises it from a statement (an ``IntegrityError`` for a duplicate key,
    ``connection_invalidated`` for a lost connection), without the statement's parameters."""
    error = DBAPIError.instance(statement, None, exc, psycopg.Error, connection_invalidated=lost)
    return error if isinstance(error, BaseException) else exc


def _idle_one_write_engine(session: Session) -> Engine | None:
    """The engine of a unit declared to make one write, whose statements begin their own
    transaction on PostgreSQL and of which nothing has run yet; else None."""
    progress = session.info.get(PROGRESS)
    if progress is None or not progress.one_write or session.in_transaction():
        return None
    bind = session.get_bind()
    if not isinstance(bind, Engine) or not bind.get_execution_options().get(BEGINS_WITH_FIRST):
        return None
    return bind
