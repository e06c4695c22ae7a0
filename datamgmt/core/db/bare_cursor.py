"""A pooled connection's own DB-API cursor in autocommit, for the one statement of a unit that
needs no transaction around it (core/db/point_reads.py, core/db/point_writes.py).

Through a SQLAlchemy session one statement costs more than the statement: measured in process
on PostgreSQL, about 0.35 ms for the session's connection (checkout, isolation level set and
reset, commit, checkin) and the execution context around it.  The pool's checkout still runs
here, with its check for a connection the server hung up on while it sat idle.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Engine


@contextmanager
def autocommit_cursor(engine: Engine) -> Iterator[Any]:
    """A cursor on a connection checked out of ``engine``'s pool, in autocommit for the block;
    the connection goes back afterwards, or is discarded if the driver found it broken."""
    pooled = engine.raw_connection()
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
        elif switch:
            connection.autocommit = False
        pooled.close()


def is_broken(connection: Any) -> bool:
    """A psycopg connection the server or network dropped (a refused value leaves it usable)."""
    return isinstance(connection, psycopg.Connection) and connection.closed
