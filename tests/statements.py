"""What the tests see of the SQL an engine runs: one listener, added for a block and removed after."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

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
