"""What the tests see of the SQL an engine runs: one listener, added for a block and removed after."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Engine, event


@contextmanager
def captured(engine: Engine, keep: Callable[[Any, str, Any], Any]) -> Iterator[list[Any]]:
    """``keep(cursor, statement, parameters)`` of each statement run inside the block, where it
    is not None."""
    seen: list[Any] = []

    def record(_conn, cursor, statement, parameters, _context, _many):  # type: ignore[no-untyped-def]
        value = keep(cursor, statement, parameters)
        if value is not None:
            seen.append(value)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@contextmanager
def sent_to_postgresql(keep: Callable[[Any, str, Any], Any]) -> Iterator[list[Any]]:
    """As :func:`captured`, for every statement psycopg sends in the block, asked once it ran: those
    SQLAlchemy runs and those run on a bare cursor (core/db/point_reads.py, core/db/point_writes.py),
    which no engine event sees."""
    seen: list[Any] = []
    original = psycopg.Cursor.execute

    def execute(cursor: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        result = original(cursor, query, params, **kwargs)
        value = keep(cursor, str(query), params)
        if value is not None:
            seen.append(value)
        return result

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        psycopg.Cursor.execute = original  # type: ignore[method-assign]
