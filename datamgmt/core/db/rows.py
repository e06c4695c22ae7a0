"""Small row helpers shared by the services: one statement per admin write, without the ORM.

The admin API sets one attribute, limit, usage or distance per call, thousands of times when
a site is configured; each is a single ``INSERT … ON CONFLICT`` on the connection (one round
trip, no identity-map or flush work), the shape Rucio's admin calls take in many more steps.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.orm import Session

from datamgmt.core.db.models import Base
from datamgmt.core.db.session import is_postgresql
from datamgmt.core.db.types import utcnow


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched.

    ``Session.execute`` is typed as returning a plain Result, which has no ``rowcount``; the result
    of a DML statement is always a CursorResult, which has, so the cast states what SQLAlchemy's
    typing cannot.
    """
    return cast(CursorResult[Any], result).rowcount


def _insert(session: Session, model: type[Base]) -> Any:
    dialect = postgresql if is_postgresql(session) else sqlite
    return dialect.insert(model.__table__)


def _key_names(model: type[Base]) -> list[str]:
    # Column.key is Optional only for a Column built without a name, which no model has.
    return [cast(str, column.key) for column in model.__mapper__.primary_key]


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
