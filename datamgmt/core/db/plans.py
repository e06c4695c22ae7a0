"""How statements reach PostgreSQL (psycopg 3): a unit of work's ``BEGIN`` travels with its first
statement, and statements that carry arrays are planned for each call, never prepared.

psycopg opens a transaction by sending ``BEGIN`` and waiting for its answer before it sends the
first statement (in its pipeline mode too): a round trip of its own in every unit of work that
writes, one of an admin call's three (``BEGIN``, the one ``INSERT``, ``COMMIT``).  Units that
write therefore run their connection in autocommit, as read-only ones do
(:mod:`datamgmt.core.db.readers`), and open their transaction themselves: ``BEGIN`` and the
first statement go out together in pipeline mode and are answered together.  From there on the
unit is an ordinary transaction, which psycopg commits or rolls back (it sends ``COMMIT`` and
``ROLLBACK`` whenever a transaction is open, autocommit or not).

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

from psycopg import Connection, ServerCursor
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine, event
from sqlalchemy.engine.interfaces import DBAPICursor, ExecutionContext

#: Execution option of the units that write: they open their transaction with their first statement.
BEGINS_WITH_FIRST = "datamgmt_begins_with_first"


def writer_options(engine: Engine) -> dict[str, Any]:
    """The execution options of ``engine``'s units that write: autocommit, opened by
    :func:`plan_and_send`'s hooks, on psycopg 3; none elsewhere."""
    if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
        return {BEGINS_WITH_FIRST: True, "isolation_level": "AUTOCOMMIT"}
    return {}


def plan_and_send(engine: Engine) -> None:
    """Send ``engine``'s statements as the module docstring says."""
    event.listen(engine, "do_execute", _execute)
    for hook in ("do_executemany", "do_execute_no_params"):
        event.listen(engine, hook, _begin_first)


def _execute(cursor: DBAPICursor, statement: str, parameters: Any, context: ExecutionContext) -> bool:
    """Run the statement here where it needs more than SQLAlchemy's plain ``execute``."""
    if isinstance(cursor, ServerCursor):  # a streamed query: DECLAREd, so planned for its own values
        _begin_first(cursor, context)
        return False
    arrays = isinstance(parameters, dict) and any(isinstance(value, list) for value in parameters.values())
    prepare = False if arrays else None  # None: psycopg's own choice
    connection = cursor.connection
    if _opens_the_transaction(connection, context):
        with connection.pipeline():
            connection.execute("BEGIN")
            cursor.execute(statement, parameters, prepare=prepare)  # type: ignore[call-arg]  # psycopg's own keyword
        return True  # SQLAlchemy does not run it again
    if arrays:
        cursor.execute(statement, parameters, prepare=False)  # type: ignore[call-arg]
        return True
    return False


def _begin_first(cursor: DBAPICursor, *args: Any) -> bool:
    """``BEGIN`` on its own before a unit's first statement of the other kinds (rare: bulk rows)."""
    if _opens_the_transaction(cursor.connection, args[-1]):
        cursor.connection.execute("BEGIN")
    return False  # SQLAlchemy still runs the statement itself


def _opens_the_transaction(connection: Connection[Any], context: ExecutionContext) -> bool:
    return (
        bool(context.execution_options.get(BEGINS_WITH_FIRST))
        and connection.autocommit
        and connection.info.transaction_status == TransactionStatus.IDLE
    )
