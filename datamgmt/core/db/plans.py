"""Statements that carry arrays are planned for each call on PostgreSQL, never prepared.

psycopg prepares a statement once it has run five times on a connection, and PostgreSQL may
then plan it once for any parameters (a generic plan).  A generic plan cannot see how many
keys an array holds (``keys_in``, the ``unnest`` bulk inserts), and on tables that autovacuum
had not analyzed yet it joined the 500 keys of an attach to every DID row by nested loop:
190 ms a call instead of 8 ms, from the sixth call on.  Such statements are sent unprepared,
so each is planned with its own arrays (a fraction of a millisecond for a 500-key
statement); every other statement keeps psycopg's preparation, and the foreign-key checks
PostgreSQL runs inside them keep their cached plans.
"""

from __future__ import annotations

from typing import Any

from psycopg import ServerCursor
from sqlalchemy import Engine, event
from sqlalchemy.engine.interfaces import DBAPICursor


def plan_arrays_per_call(engine: Engine) -> None:
    """Send ``engine``'s statements with array parameters unprepared (psycopg 3)."""
    event.listen(engine, "do_execute", _unprepared_if_arrays)


def _unprepared_if_arrays(cursor: DBAPICursor, statement: str, parameters: Any, _context: Any) -> bool:
    if isinstance(cursor, ServerCursor):  # a streamed query: DECLAREd, so planned for its own values
        return False
    if isinstance(parameters, dict) and any(isinstance(value, list) for value in parameters.values()):
        cursor.execute(statement, parameters, prepare=False)  # type: ignore[call-arg]  # psycopg's own keyword
        return True  # SQLAlchemy does not run it again
    return False
