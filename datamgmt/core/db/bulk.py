"""Many new rows of one table in one statement: ``INSERT … SELECT unnest(?), unnest(?), …``.

An ``executemany`` on PostgreSQL (psycopg's pipeline) still sends, binds and executes every
row as a statement of its own: a rule with 5,000 transfers wrote 20,000 rows that way and
spent more time in those statements, on both sides of the socket, than in everything else it
did.  :func:`insert_rows` sends one array per column instead, so the server runs one
statement per chunk.  SQLite, in process and without a round trip to save, keeps
``executemany``, but on the driver's cursor with values converted here: through SQLAlchemy
each row's parameters were built, defaulted and converted one by one, which cost a 5,000-file
rule with transfers about twice the time SQLite itself spent inserting its 20,000 rows.

Column defaults are applied here, as the ORM would: a constant once, a function (``utcnow``,
``new_id``) once per row for a key column and once per chunk for any other, where one value
is as right as many.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Column, Table, bindparam, cast, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
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
    defaulted = [column for column in table.c if column.key not in given and column.default is not None]
    insert_chunk = _unnest if is_postgresql(session) else _executemany
    for start in range(0, len(rows), CHUNK):
        part = rows[start : start + CHUNK]
        columns = {name: [row[name] for row in part] for name in given}
        for column in defaulted:
            columns[column.key] = _default_values(column, len(part))
        insert_chunk(session, table, columns)


def _unnest(session: Session, table: Table, arrays: dict[str, list[Any]]) -> None:
    """One ``INSERT … SELECT unnest(…)`` of the chunk's columns (PostgreSQL).

    A column with one value in every row (a rule's id, an account, a state, a default such as
    ``created_at``) is sent once, as a scalar the SELECT repeats: psycopg builds every array's
    text in Python, element by element, which was about a fifth of a rule's time in process.
    One column stays an array whatever it holds, to give the SELECT its rows."""
    names = list(arrays)
    varying = {name for name in names if arrays[name].count(arrays[name][0]) != len(arrays[name])}
    varying = varying or {names[0]}
    values = select(
        *(
            func.unnest(bindparam(f"bulk_{index}", arrays[name], type_=ARRAY(table.c[name].type)))
            if name in varying
            else cast(
                bindparam(f"bulk_{index}", arrays[name][0], type_=table.c[name].type), table.c[name].type
            )
            for index, name in enumerate(names)
        )
    )
    session.execute(insert(table).from_select(names, values))


def _executemany(session: Session, table: Table, columns: dict[str, list[Any]]) -> None:
    """The chunk's rows through the driver's ``executemany`` (SQLite), each value converted by
    its column type's bind processor as SQLAlchemy would; a column of one repeated value (a
    default such as ``created_at``, a state) is converted once."""
    sql, order = _driver_insert(table, session.get_bind().dialect, tuple(columns))
    converted = []
    for name, convert in order:
        values = columns[name]
        if convert is None:
            converted.append(values)
        elif all(value is values[0] for value in values):
            converted.append([convert(values[0])] * len(values))
        else:
            converted.append([convert(value) for value in values])
    session.connection().exec_driver_sql(sql, list(zip(*converted, strict=True)))


@lru_cache(maxsize=64)
def _driver_insert(
    table: Table, dialect: Dialect, names: tuple[str, ...]
) -> tuple[str, list[tuple[str, Any]]]:
    """The INSERT of ``names`` as the driver takes it, and each parameter's name and bind
    processor in the statement's order: built once per table and set of columns."""
    compiled = insert(table).values({name: bindparam(name) for name in names}).compile(dialect=dialect)
    order = [
        (name, table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
        for name in compiled.positiontup or ()
    ]
    return compiled.string, order


def _default_values(column: Column[Any], count: int) -> list[Any]:
    default = column.default
    assert default is not None
    if not default.is_callable:
        return [default.arg] * count  # type: ignore[attr-defined]  # a ScalarElementColumnDefault
    make = default.arg  # type: ignore[attr-defined]  # SQLAlchemy wraps it to take the execution context
    if column.primary_key:
        return [make(None) for _ in range(count)]
    return [make(None)] * count
