"""A pooled connection's own DB-API cursor in autocommit, for the one statement of a unit that
needs no transaction around it (core/db/point_reads.py, core/db/point_writes.py).

Through a SQLAlchemy session one statement costs more than the statement: measured in process
on PostgreSQL, about 0.35 ms for the session's connection (checkout, isolation level set and
reset, commit, checkin) and the execution context around it.  The pool's checkout still runs
here, with its check for a connection the server hung up on while it sat idle.  Its rollback on
return does not: nothing ran in a transaction, so there is nothing to undo, and SQLAlchemy's own
``Connection`` skips it the same way once its transaction has ended.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import psycopg
from sqlalchemy import Engine
from sqlalchemy.pool import _ConnectionFairy


@contextmanager
def autocommit_cursor(engine: Engine) -> Iterator[Any]:
    """A cursor on a connection checked out of ``engine``'s pool, in autocommit for the block;
    the connection goes back afterwards, or is discarded if the driver found it broken."""
    pooled = cast(_ConnectionFairy, engine.raw_connection())  # what every pool of SQLAlchemy 2.0 hands out
    connection: Any = pooled.driver_connection
    # psycopg opens a transaction before a statement unless in autocommit; pysqlite's
    # connections are in autocommit already (isolation_level None, core/db/session.py).
    switch = isinstance(connection, psycopg.Connection) and not connection.autocommit
    try:
        if switch:
            connection.autocommit = True
        yield connection.cursor()
    finally:
        if is_broken(connection):
            pooled.invalidate()
            pooled.close()
        else:
            if switch:
                connection.autocommit = False
            pooled._close_special(transaction_reset=True)  # noqa: SLF001  # see the module docstring


def is_broken(connection: Any) -> bool:
    """A psycopg connection the server or network dropped (a refused value leaves it usable)."""
    return isinstance(connection, psycopg.Connection) and connection.closed
