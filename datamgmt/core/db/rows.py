"""Small row helpers shared by the services: one statement per admin write, without the ORM.

The admin API sets one attribute, limit, usage or distance per call, thousands of times when
a site is configured; each is a single ``INSERT … ON CONFLICT`` on the connection (one round
trip, no identity-map or flush work), the shape Rucio's admin calls take in many more steps.
When part of the row's key is looked up by name (an RSE's id, a live account), the lookup is
the ``SELECT`` of that same statement (:func:`put_found`, :func:`insert_found`): on a loaded
host every round trip costs milliseconds, more than either statement's work.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import QueryableAttribute, Session

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


def put_found(
    session: Session, model: type[Base], found: ColumnElement[bool], key: dict[str, Any], **values: Any
) -> bool:
    """:func:`put` of a row whose key is partly read from other tables by ``found``, in one
    ``INSERT … SELECT … WHERE found ON CONFLICT … DO UPDATE``; whether ``found`` matched.

    ``key`` maps each key column to a value or to a column of those tables (``RSE.id`` with
    ``found`` naming a live RSE).  When ``found`` matches nothing, nothing is written, and
    the caller, on that path only, finds out what was missing.
    """
    statement = _insert_found(session, model, found, {**key, **values})
    changes = {name: statement.excluded[name] for name in values}
    if "updated_at" in model.__table__.c:
        changes["updated_at"] = utcnow()
    statement = statement.on_conflict_do_update(index_elements=_key_names(model), set_=changes)
    if not _inserted(session, model, statement):
        return False
    for loaded in [row for row in session.identity_map.values() if isinstance(row, model)]:
        session.expire(loaded)  # this session's copies read the new values (the key is not known here)
    return True


def insert_found(
    session: Session, model: type[Base], found: ColumnElement[bool], values: dict[str, Any]
) -> bool:
    """:func:`insert_new` of a row partly read from other tables by ``found`` (as :func:`put_found`);
    False when ``found`` matched nothing or the key exists, which the caller tells apart."""
    statement = _insert_found(session, model, found, values)
    return _inserted(session, model, statement.on_conflict_do_nothing(index_elements=_key_names(model)))


def _insert_found(
    session: Session, model: type[Base], found: ColumnElement[bool], values: dict[str, Any]
) -> Any:
    session.flush()
    table = model.__table__
    selected = [
        value if isinstance(value, ColumnElement | QueryableAttribute) else literal(value, table.c[name].type)
        for name, value in values.items()
    ]
    return _insert(session, model).from_select(list(values), select(*selected).where(found))


def _inserted(session: Session, model: type[Base], statement: Any) -> bool:
    keys = (model.__table__.c[name] for name in _key_names(model))
    return (
        session.connection().execute(statement.returning(*keys)).first() is not None
    )  # rowcount: -1 on psycopg
