"""Small row helpers shared by the services: one statement per admin write, without the ORM.

The admin API sets one attribute, limit, usage or distance per call, thousands of times when
a site is configured; each is a single ``INSERT … ON CONFLICT`` on the connection (one round
trip, no identity-map or flush work), the shape Rucio's admin calls take in many more steps.
When part of the row's key is looked up by name (an RSE's id, a live account), the lookup is
the ``SELECT`` of that same statement (:class:`FoundWrite`): on a loaded host every round trip
costs milliseconds, more than either statement's work.

Each shape of statement is built and compiled once per database dialect and then only run with
new parameters: SQLAlchemy keeps no compiled form of an ``ON CONFLICT`` insert (its dialects'
``Insert`` has no cache key), and building and compiling one again on every call cost about a
millisecond of CPU, more than the rest of an admin request.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, NamedTuple, cast
from weakref import WeakKeyDictionary

from sqlalchemy import ColumnElement, CursorResult, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, Result
from sqlalchemy.orm import Session

from datamgmt.core.db.models import Base
from datamgmt.core.db.point_writes import PointWrite
from datamgmt.core.db.types import utcnow

_TIMESTAMPS = ("created_at", "updated_at")
#: The compiled statements, by dialect and then by shape.
_COMPILED: WeakKeyDictionary[Dialect, dict[Hashable, PointWrite]] = WeakKeyDictionary()


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched.

    ``Session.execute`` is typed as returning a plain Result, which has no ``rowcount``; the result
    of a DML statement is always a CursorResult, which has, so the cast states what SQLAlchemy's
    typing cannot.
    """
    return cast(CursorResult[Any], result).rowcount


def _key_names(model: type[Base]) -> tuple[str, ...]:
    # Column.key is Optional only for a Column built without a name, which no model has.
    return tuple(cast(str, column.key) for column in model.__mapper__.primary_key)


def put(session: Session, model: type[Base], key: tuple[Any, ...], **values: Any) -> None:
    """Set ``values`` on the row with primary key ``key``, creating the row if it is missing.

    The shape of every "set one attribute / limit / usage / distance" call of the admin API.
    """
    names = _key_names(model)
    row = {**dict(zip(names, key, strict=True)), **values}
    _run(session, _Shape(model, tuple(row), names, tuple(values)), row)
    loaded = session.identity_map.get(session.identity_key(model, key))
    if loaded is not None:
        session.expire(loaded)  # this session's copy reads the new values


def insert_new(
    session: Session, model: type[Base], values: dict[str, Any], unique: list[str] | None = None
) -> bool:
    """Insert one row unless its primary key (or the ``unique`` columns) already exists; whether it did.

    One round trip where a lookup and an ORM insert took two and a flush.
    """
    shape = _Shape(model, tuple(values), tuple(unique) if unique else _key_names(model), None)
    return _run(session, shape, values) is not None


class FoundWrite:
    """``INSERT … SELECT … WHERE found ON CONFLICT …`` of one shape: a write that reads part of its
    row (a live RSE's id, say) from other tables in the same statement, whether ``found`` matched.

    ``found`` and ``selected`` (column name -> expression over those tables) name their parameters
    with ``bindparam``; each column in ``params`` is a parameter of its own name.  ``update``
    names the columns an existing row takes (``ON CONFLICT … DO UPDATE``); without, an existing
    row is kept and nothing is written.  When nothing was written the caller, on that path only,
    finds out why.  Declare one per module (it is the key of its compiled statement).
    """

    def __init__(
        self,
        model: type[Base],
        found: ColumnElement[bool],
        selected: dict[str, Any],
        params: tuple[str, ...],
        update: tuple[str, ...] | None = None,
    ) -> None:
        self.model, self.found, self.selected = model, found, selected
        self.shape = _Shape(model, (*selected, *params), _key_names(model), update)

    def __call__(self, session: Session, **params: Any) -> bool:
        if _run(session, self, params) is None:
            return False
        if (
            self.shape.update is not None
        ):  # this session's copies read the new values (their keys are not known here)
            for loaded in [row for row in session.identity_map.values() if isinstance(row, self.model)]:
                session.expire(loaded)
        return True

    def statement(self, dialect: Any) -> Any:
        table = self.model.__table__
        names = self.shape.columns_with_timestamps()
        columns = [self.selected.get(name, bindparam(name, type_=table.c[name].type)) for name in names]
        return self.shape.on_conflict(
            dialect.insert(table).from_select(names, select(*columns).where(self.found))
        )


class BuiltWrite:
    """A write of a shape the others do not cover, built by ``build(dialect)`` (the dialect's
    module, for its ``insert``) once per dialect and then only run; whether it returned a row.
    Declare one per module (it is the key of its compiled statement)."""

    def __init__(self, build: Callable[[Any], Any]) -> None:
        self.statement = build

    def __call__(self, session: Session, **params: Any) -> bool:
        return _run(session, self, params) is not None


class _Shape(NamedTuple):
    """A row write's shape: its model, the columns set from parameters, the columns an existing
    row is found by, and those it then takes (None: it is kept)."""

    model: type[Base]
    columns: tuple[str, ...]
    conflict: tuple[str, ...]
    update: tuple[str, ...] | None

    def columns_with_timestamps(self) -> list[str]:
        table = self.model.__table__
        return [
            *self.columns,
            *(name for name in _TIMESTAMPS if name in table.c and name not in self.columns),
        ]

    def statement(self, dialect: Any) -> Any:
        table = self.model.__table__
        values = {name: bindparam(name, type_=table.c[name].type) for name in self.columns_with_timestamps()}
        return self.on_conflict(dialect.insert(table).values(values))

    def on_conflict(self, statement: Any) -> Any:
        table, conflict, update = self.model.__table__, list(self.conflict), self.update
        if update is None:
            statement = statement.on_conflict_do_nothing(index_elements=conflict)
        else:
            changed = (*update, *(name for name in _TIMESTAMPS[1:] if name in table.c))
            statement = statement.on_conflict_do_update(
                index_elements=conflict, set_={name: statement.excluded[name] for name in changed}
            )
        return statement.returning(*(table.c[name] for name in conflict))  # rowcount is -1 here on psycopg


def _run(session: Session, shape: _Shape | FoundWrite | BuiltWrite, params: dict[str, Any]) -> Any:
    """Run ``shape``'s statement, compiled on first use with this session's dialect; the first
    row it returned (None: it wrote nothing)."""
    session.flush()  # rows this session added through the ORM exist before the statement refers to them
    dialect = session.get_bind().dialect
    compiled_here = _COMPILED.setdefault(dialect, {})
    write = compiled_here.get(shape)
    if write is None:
        sql_dialect = postgresql if dialect.name == "postgresql" else sqlite
        write = compiled_here[shape] = PointWrite(shape.statement(sql_dialect).compile(dialect=dialect))
    now = utcnow()
    return write.first(session, {"created_at": now, "updated_at": now, **params})
