"""Listings that stream through a server-side cursor only when they are long.

On PostgreSQL a streamed query needs a transaction and a server-side cursor: BEGIN, DECLARE,
FETCH, CLOSE and COMMIT, five round trips where a plain SELECT in autocommit takes one
(``core/db/plans.py``).  Listing the one rule of a DID cost 3.3-3.9 ms a call that way, and
1.9-2.2 ms with a plain SELECT.  Most listings are that short, so the first :data:`FIRST` + 1
rows are read with a plain ``SELECT … LIMIT``; only a listing longer than that runs again,
streamed from its start, so that every row still comes from one statement and one snapshot,
and memory stays flat however long it is.  A listing whose own ``LIMIT`` (a caller's
``limit=``) is :data:`FIRST` or less is read whole at once.  SQLite has no round trip to save
and streams as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Row, Select
from sqlalchemy.exc import CompileError
from sqlalchemy.orm import Session

#: Rows a listing may have and still be read whole by one plain SELECT.
FIRST = 1000
#: Rows per FETCH of a streamed listing.
BATCH = 1000


def scalars(session: Session, query: Select[Any]) -> Iterator[Any]:
    """The first column of each row of ``query`` (ORM entities for ``select(Model)``), in order."""
    for row in _listing(session, query):
        yield row[0]


def rows(session: Session, query: Select[Any]) -> Iterator[Row[Any]]:
    """Each row of ``query``, in order."""
    return _listing(session, query)


def _listing(session: Session, query: Select[Any]) -> Iterator[Row[Any]]:
    if session.get_bind().dialect.name == "postgresql":
        if _short_by_its_limit(query):
            yield from session.execute(query).all()
            return
        if query._limit_clause is None and query._offset_clause is None:
            first = session.execute(query.limit(FIRST + 1)).all()
            if len(first) <= FIRST:
                yield from first
                return
    yield from session.execute(query.execution_options(yield_per=BATCH))


def _short_by_its_limit(query: Select[Any]) -> bool:
    """Whether the query's own ``LIMIT`` (a caller's ``limit=``) keeps it to FIRST rows."""
    if query._limit_clause is None:
        return False
    try:
        return query._limit <= FIRST  # type: ignore[operator]
    except CompileError:  # a limit given as an expression: no bound known here
        return False
