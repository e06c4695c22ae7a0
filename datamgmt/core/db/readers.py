"""Read-only units of work on PostgreSQL (psycopg 3) without BEGIN and COMMIT of their own.

The commonest calls read one row (``GET /dids/{scope}/{name}`` with a cached token): inside a
transaction that is three round trips, BEGIN, the SELECT and COMMIT, each a wake-up of the
server's backend, which on a loaded host costs more than the query.  At PostgreSQL's READ
COMMITTED every statement takes its own snapshot whether or not a transaction is open, so a
run of plain SELECTs reads exactly the same rows in autocommit mode: read-only units run in
autocommit, and a one-row read costs one round trip.

What does need a transaction gets one, opened on the same connection just before it runs and
committed (or rolled back) when the unit ends, as any other: a streamed query (a server-side
cursor lives only inside a transaction), a SELECT that locks rows (``FOR UPDATE``/``FOR
SHARE``), and any statement that is not a SELECT, so that a write in a unit wrongly marked
read-only still commits or rolls back whole.  psycopg sends COMMIT and ROLLBACK only when a
transaction is open, so a unit that ran plain SELECTs ends without a round trip.
"""

from __future__ import annotations

from typing import Any

from psycopg.pq import TransactionStatus
from sqlalchemy import Engine, event
from sqlalchemy.engine.interfaces import DBAPICursor, ExecutionContext
from sqlalchemy.sql.selectable import SelectBase

#: Execution option marking a transaction that only reads (``session.READ_ONLY``).
READ_ONLY = "datamgmt_read_only"


def reader_options(engine: Engine) -> dict[str, Any]:
    """The execution options of ``engine``'s read-only units: autocommit on psycopg 3."""
    if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
        return {READ_ONLY: True, "isolation_level": "AUTOCOMMIT"}
    return {READ_ONLY: True}


def begin_when_needed(engine: Engine) -> None:
    """Open a transaction before the first statement of a read-only unit that needs one."""
    for hook in ("do_execute", "do_executemany", "do_execute_no_params"):
        event.listen(engine, hook, _begin_unless_plain_read)


def _begin_unless_plain_read(cursor: DBAPICursor, *args: Any) -> bool:
    context: ExecutionContext = args[-1]
    if context.execution_options.get(READ_ONLY) and not _plain_read(context):
        connection = cursor.connection
        if connection.autocommit and connection.info.transaction_status == TransactionStatus.IDLE:
            connection.execute("BEGIN")
    return False  # SQLAlchemy still runs the statement itself


def _plain_read(context: ExecutionContext) -> bool:
    """A SELECT that neither locks rows nor streams through a server-side cursor."""
    statement = getattr(context.compiled, "statement", None)
    return (
        isinstance(statement, SelectBase)
        and getattr(statement, "_for_update_arg", None) is None
        and not context.execution_options.get("stream_results")
    )
