"""How a unit of work's statements reach PostgreSQL (psycopg 3): no transaction where a unit only
reads plain rows, a ``BEGIN`` that travels with the first statement that needs one, and statements
that carry arrays planned for each call, never prepared.

**Read-only units without a transaction.**  The commonest calls read one row (``GET
/dids/{scope}/{name}`` with a cached token): inside a transaction that is three round trips,
``BEGIN``, the SELECT and ``COMMIT``, each a wake-up of the server's backend, which on a loaded
host costs more than the query.  At PostgreSQL's READ COMMITTED every statement takes its own
snapshot whether or not a transaction is open, so a run of plain SELECTs reads exactly the same
rows in autocommit mode.  What does need a transaction in such a unit gets one, opened just
before it runs and committed (or rolled back) when the unit ends: a streamed query (a
server-side cursor lives only inside a transaction), a SELECT that locks rows (``FOR
UPDATE``/``FOR SHARE``), and any statement that is not a SELECT, so that a write in a unit
wrongly marked read-only still commits or rolls back whole.

**Units that write open their transaction with their first statement.**  psycopg opens a
transaction by sending ``BEGIN`` and waiting for its answer before it sends the first statement
(in its pipeline mode too): a round trip of its own, one of an admin call's three (``BEGIN``,
the one ``INSERT``, ``COMMIT``).  So these units run their connection in autocommit as well and
``BEGIN`` goes out in pipeline mode with their first statement, answered together.  From there
on the unit is an ordinary transaction, which psycopg commits or rolls back (it sends ``COMMIT``
and ``ROLLBACK`` whenever a transaction is open, autocommit or not), and a reader's unit that
ran plain SELECTs only ends without a round trip.

**A unit declared to make one write commits it as it runs it.**  An admin call (an RSE's
attribute, a protocol, a limit, a scope) is one ``INSERT … SELECT``, and its ``COMMIT`` was a
round trip of its own, a third of the call's time in the database.  A unit that declares it
(:func:`one_write`) sends its write without ``BEGIN``: PostgreSQL runs a statement outside a
transaction as a transaction of its own, committed before it answers, so the write is as
atomic as before and there is nothing left to commit.  Its plain SELECTs (a permission check,
finding out why the write found nothing) run outside a transaction as a reader's do.  A
second write in such a unit is refused before it is sent: it could not be undone with the
first.  Where the unit's transaction is open already (its first statement was not a plain
read), the declaration changes nothing.  Bulk statements (``executemany``) and streams always
open a transaction.

**Arrays are never prepared.**  psycopg prepares a statement once it has run five times on a
connection, and PostgreSQL may then plan it once for any parameters (a generic plan).  A generic
plan cannot see how many keys an array holds (``keys_in``, the ``unnest`` bulk inserts), and on
tables that autovacuum had not analyzed yet it joined the 500 keys of an attach to every DID row
by nested loop: 190 ms a call instead of 8 ms, from the sixth call on.  Such statements are sent
unprepared, so each is planned with its own arrays (a fraction of a millisecond for a 500-key
statement); every other statement keeps psycopg's preparation, and the foreign-key checks
PostgreSQL runs inside them keep their cached plans.

One set of engine hooks (:func:`plan_and_send`) decides all four per statement.  Elsewhere
(SQLite, another PostgreSQL driver) units keep their driver's own transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Connection, ServerCursor
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine, event
from sqlalchemy.engine.interfaces import DBAPICursor, ExecutionContext
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import SelectBase

#: Execution option of a unit that only reads (``transaction(read_only=True)``).
READ_ONLY = "datamgmt_read_only"
#: Execution option of a unit that writes: its transaction opens with its first statement.
BEGINS_WITH_FIRST = "datamgmt_begins_with_first"
#: ``info`` key (of a session, and of the connection it uses) of the unit's :class:`UnitProgress`.
PROGRESS = "datamgmt_progress"


@dataclass
class UnitProgress:
    """How far one unit of work got: whether running it again could do anything twice
    (core/db/session.py), and whether it declared that it makes one write (:func:`one_write`)."""

    ran: bool = False
    committing: bool = False
    one_write: bool = False


class SecondWrite(RuntimeError):
    """A unit declared to make one write tried another: a programming error, caught before the
    second write is sent (the first is committed already)."""


def one_write(session: Session) -> None:
    """Declare that the unit of work of ``session`` (a :func:`~datamgmt.core.db.session.transaction`)
    makes exactly one write, so that on PostgreSQL the write commits as it runs."""
    progress = session.info.get(PROGRESS)
    if progress is None:
        raise RuntimeError("one_write: the session is not a unit of work of transaction()")
    progress.one_write = True


def unit_options(engine: Engine, read_only: bool) -> dict[str, Any]:
    """The execution options of ``engine``'s units of work of that kind: autocommit, with the
    transaction opened by :func:`plan_and_send`'s hooks, on psycopg 3."""
    if not (engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"):
        return {READ_ONLY: True} if read_only else {}
    return {READ_ONLY if read_only else BEGINS_WITH_FIRST: True, "isolation_level": "AUTOCOMMIT"}


def plan_and_send(engine: Engine) -> None:
    """Send ``engine``'s statements as the module docstring says."""
    event.listen(engine, "do_execute", _execute)
    for hook in ("do_executemany", "do_execute_no_params"):
        event.listen(engine, hook, _begin_alone)


def _execute(cursor: DBAPICursor, statement: str, parameters: Any, context: ExecutionContext) -> bool:
    """Run the statement here where it needs more than SQLAlchemy's plain ``execute``; True
    when it ran here, so SQLAlchemy does not run it again."""
    if isinstance(cursor, ServerCursor):  # a streamed query: DECLAREd, so planned for its own values
        return _begin_alone(cursor, context)
    arrays = isinstance(parameters, dict) and any(isinstance(value, list) for value in parameters.values())
    prepare = False if arrays else None  # None: psycopg's own choice
    connection = cursor.connection
    if _needs_begin(connection, context, single=True):
        with connection.pipeline():
            connection.execute("BEGIN")
            cursor.execute(statement, parameters, prepare=prepare)  # type: ignore[call-arg]  # psycopg's own keyword
        return True
    if arrays:
        cursor.execute(statement, parameters, prepare=False)  # type: ignore[call-arg]
        return True
    return False


def _begin_alone(cursor: DBAPICursor, *args: Any) -> bool:
    """``BEGIN`` on its own before a statement of the other kinds (rare: bulk rows, a stream)."""
    if _needs_begin(cursor.connection, args[-1], single=False):
        cursor.connection.execute("BEGIN")
    return False  # SQLAlchemy still runs the statement itself


def _needs_begin(connection: Connection[Any], context: ExecutionContext, single: bool) -> bool:
    """Whether this statement opens its unit's transaction: a writer's first statement (but a
    ``single`` one of a unit that makes one write), or a reader's first one that is not a plain
    SELECT."""
    if not connection.autocommit or connection.info.transaction_status != TransactionStatus.IDLE:
        return False
    options = context.execution_options
    if options.get(BEGINS_WITH_FIRST):
        progress = context.root_connection.info.get(PROGRESS)
        if progress is None or not progress.one_write:
            return True
        return not _runs_as_the_one_write(progress, context, single)
    return bool(options.get(READ_ONLY)) and not _plain_read(context)


def _runs_as_the_one_write(progress: UnitProgress, context: ExecutionContext, single: bool) -> bool:
    """Whether a statement of a unit that makes one write runs without a transaction: a plain
    SELECT does, and so does the write, which then leaves the unit committed."""
    if _plain_read(context):
        return True
    if not single and not progress.committing:
        return False
    claim_the_one_write(progress, context.statement)
    return True


def claim_the_one_write(progress: UnitProgress, statement: object) -> None:
    """Mark the write of a unit that makes one as sent, or refuse a second before it is sent."""
    if progress.committing:
        raise SecondWrite(f"a unit of work declared to make one write made another: {statement!r:.200}")
    progress.committing = True  # from here a lost connection leaves the write's outcome unknown


def _plain_read(context: ExecutionContext) -> bool:
    """A SELECT that neither locks rows nor streams through a server-side cursor."""
    statement = getattr(context.compiled, "statement", None)
    return (
        isinstance(statement, SelectBase)
        and getattr(statement, "_for_update_arg", None) is None
        and not context.execution_options.get("stream_results")
    )
