"""Many new rows of one table in one statement: ``INSERT … SELECT unnest(?), unnest(?), …``.

An ``executemany`` on PostgreSQL (psycopg's pipeline) still sends, binds and executes every
row as a statement of its own: a rule with 5,000 transfers wrote 20,000 rows that way and
spent more time in those statements, on both sides of the socket, than in everything else it
did.  :func:`insert_rows` sends one array per column instead, so the server runs one
statement per chunk; SQLite, in process and without a round trip to save, keeps
``executemany``.

Column defaults are applied here, as the ORM would: a constant once, a function (``utcnow``,
``new_id``) once per row for a key column and once per chunk for any other, where one value
is as right as many.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, bindparam, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from datamgmt.core.db.models import Base
from datamgmt.core.db.session import is_postgresql

#: Rows per statement: the arrays of one chunk are built in memory at once.
CHUNK = 10_000


def insert_rows(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows``, dictionaries with the same keys (column names), into ``model``'s table."""
    if not rows:
        return
    table = model.__table__
    given = rows[0].keys()
    if any(row.keys() != given for row in rows):
        raise ValueError(f"rows for {table.name} must all have the same keys")
    if not is_postgresql(session):
        session.execute(insert(table), rows)  # Core applies the defaults itself
        return
    defaulted = [column for column in table.c if column.key not in given and column.default is not None]
    for start in range(0, len(rows), CHUNK):
        part = rows[start : start + CHUNK]
        arrays = {name: [row[name] for row in part] for name in given}
        for column in defaulted:
            arrays[column.key] = _default_values(column, len(part))
        values = select(
            *(
                func.unnest(bindparam(f"bulk_{index}", values, type_=ARRAY(table.c[name].type)))
                for index, (name, values) in enumerate(arrays.items())
            )
        )
        session.execute(insert(table).from_select(list(arrays), values))


def _default_values(column: Column[Any], count: int) -> list[Any]:
    default = column.default
    assert default is not None
    if not default.is_callable:
        return [default.arg] * count  # type: ignore[attr-defined]  # a ScalarElementColumnDefault
    make = default.arg  # type: ignore[attr-defined]  # SQLAlchemy wraps it to take the execution context
    if column.primary_key:
        return [make(None) for _ in range(count)]
    return [make(None)] * count
