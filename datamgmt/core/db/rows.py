"""Small row helpers shared by the services."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from datamgmt.core.db.models import Base


def put(session: Session, model: type[Base], key: tuple[Any, ...], **values: Any) -> None:
    """Set ``values`` on the row with primary key ``key``, creating the row if it is missing.

    The shape of every "set one attribute / limit / usage / distance" call of the admin API.
    """
    row = session.get(model, key)
    if row is None:
        names = [column.key for column in model.__mapper__.primary_key]
        session.add(model(**dict(zip(names, key, strict=True)), **values))
    else:
        for name, value in values.items():
            setattr(row, name, value)
    session.flush()
