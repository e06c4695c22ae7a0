"""Small row helpers shared by the services: one statement per admin write, without the ORM.

The admin API sets one attribute, limit, usage or distance per call, thousands of times when
a site is configured; each is a single ``INSERT … ON CONFLICT`` on the connection (one round
trip, no identity-map or flush work), the shape Rucio's admin calls take in many more steps.
When part of the row's key is looked up by name (an RSE's id, a live account), the lookup is
the ``SELECT`` of that same statement (:class:`FoundWrite`): on a loaded
host every round trip costs milliseconds, more than either statement's work.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import ColumnElement, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Compiled, Dialect
from sqlalchemy.orm import Session

from datamgmt.core.db.models import Base
from datamgmt.core.db.session import is_postgresql
from datamgmt.core.db.types import utcnow


def _insert(session: Session, model: type[Base]) -> Any:
    dialect = postgresql if is_postgresql(session) else sqlite
    return dialect.insert(model.__table__)


def _key_names(model: type[Base]) -> list[str]:
    return [column.key for column in model.__mapper__.primary_key]


def _forget_loaded(session: Session, model: type[Base], key: tuple[Any, ...]) -> None:
    """Expire this session's copy of the row, if it holds one, so it reads the new values."""
    loaded = session.identity_map.get(session.identity_key(model, key))
    if loaded is not None:
        session.expire(loaded)


def put(session: Session, model: type[Base], key: tuple[Any, ...], **values: Any) -> None:
    """Set ``values`` on the row with primary key ``key``, creating the row if it is missing.

    The shape of every "set one attribute / limit / usage / distance" call of the admin API.
    """
    session.flush()  # rows this session added through the ORM exist before the statement refers to them
    names = _key_names(model)
    changes = dict(values)
    if "updated_at" in model.__table__.c and "updated_at" not in changes:
        changes["updated_at"] = utcnow()  # ON CONFLICT … DO UPDATE applies no onupdate default
    statement = (
        _insert(session, model)
        .values(**dict(zip(names, key, strict=True)), **values)
        .on_conflict_do_update(index_elements=names, set_=changes)
    )
    session.connection().execute(statement)
    _forget_loaded(session, model, key)


def insert_new(
    session: Session, model: type[Base], values: dict[str, Any], unique: list[str] | None = None
) -> bool:
    """Insert one row unless its primary key (or the ``unique`` columns) already exists; whether it did.

    One round trip where a lookup and an ORM insert took two and a flush.
    """
    session.flush()
    names = unique or _key_names(model)
    statement = (
        _insert(session, model)
        .values(**values)
        .on_conflict_do_nothing(index_elements=names)
        .returning(*(model.__table__.c[name] for name in names))  # rowcount is -1 here on psycopg
    )
    return session.connection().execute(statement).first() is not None


class FoundWrite:
    """``INSERT … SELECT … WHERE found ON CONFLICT …`` of one shape: a write that reads part of its
    row (a live RSE's id, say) from other tables in the same statement, whether ``found`` matched.

    ``found`` and ``selected`` (column name -> expression over those tables) name their parameters
    with ``bindparam``; each column in ``params`` is a parameter of its own name, and
    ``created_at``/``updated_at`` are now.  ``update`` names the columns an existing row takes
    (``ON CONFLICT … DO UPDATE``); without, an existing row is kept and nothing is written.
    When nothing was written the caller, on that path only, finds out why.

    Built and compiled once per database dialect: SQLAlchemy keeps no compiled form of an
    ``ON CONFLICT`` insert (its dialects' ``Insert`` has no cache key), and building and
    compiling one cost about a millisecond of CPU on every call, more than the rest of a request.
    """

    def __init__(
        self,
        model: type[Base],
        found: ColumnElement[bool],
        selected: dict[str, Any],
        params: tuple[str, ...],
        update: tuple[str, ...] = (),
    ) -> None:
        self.model, self.found, self.selected, self.params, self.update = (
            model,
            found,
            selected,
            params,
            update,
        )
        self._compiled: WeakKeyDictionary[Dialect, Compiled] = WeakKeyDictionary()

    def __call__(self, session: Session, **params: Any) -> bool:
        session.flush()  # rows this session added through the ORM exist before the statement reads them
        connection = session.connection()
        compiled = self._compiled.get(connection.dialect)
        if compiled is None:
            compiled = self._statement(connection.dialect.name).compile(dialect=connection.dialect)
            self._compiled[connection.dialect] = compiled
        now = utcnow()
        result = connection.execute(compiled, {**params, "created_at": now, "updated_at": now})  # type: ignore[call-overload]
        if result.first() is None:
            return False
        if self.update:  # this session's copies read the new values (their keys are not known here)
            for loaded in [row for row in session.identity_map.values() if isinstance(row, self.model)]:
                session.expire(loaded)
        return True

    def _statement(self, dialect_name: str) -> Any:
        table = self.model.__table__
        names = [
            *self.selected,
            *self.params,
            *(name for name in ("created_at", "updated_at") if name in table.c),
        ]
        columns = [self.selected.get(name, bindparam(name, type_=table.c[name].type)) for name in names]
        dialect = postgresql if dialect_name == "postgresql" else sqlite
        statement = dialect.insert(table).from_select(names, select(*columns).where(self.found))
        keys = _key_names(self.model)
        if self.update:
            changes = {
                name: statement.excluded[name] for name in (*self.update, "updated_at") if name in table.c
            }
            statement = statement.on_conflict_do_update(index_elements=keys, set_=changes)
        else:
            statement = statement.on_conflict_do_nothing(index_elements=keys)
        return statement.returning(*(table.c[name] for name in keys))  # rowcount is -1 here on psycopg
