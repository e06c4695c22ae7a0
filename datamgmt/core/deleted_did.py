"""Removed DIDs kept as they were (Rucio's ``deleted_dids``), so that they can be resurrected.

Every path that deletes ``dids`` rows (the undertaker, the reaper forgetting a file) first
copies them here with one ``INSERT … SELECT``; :func:`restore` puts them back, without their
lifetime.  Content, metadata and followers go with a DID and do not come back: a restored
collection is empty (what it held stays in ``contents_history``), a restored file has no
replica until one is registered again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, case, delete, insert, literal, select
from sqlalchemy.orm import Session

from datamgmt.core.db.models import DELETED_DID_COLUMNS, DataIdentifier, Scope, deleted_dids
from datamgmt.core.db.types import utcnow
from datamgmt.core.did import COLLECTIONS
from datamgmt.core.keys import DIDKey, chunks, keys_in

_KEPT = [column for column in DELETED_DID_COLUMNS if column != "deleted_at"]


def keep(session: Session, condition: ColumnElement[bool]) -> None:
    """Copy the ``dids`` rows matching ``condition``, which the caller is about to delete."""
    rows = select(DataIdentifier.scope, DataIdentifier.name).where(condition)
    session.execute(delete(deleted_dids).where(keys_in((deleted_dids.c.scope, deleted_dids.c.name), rows)))
    copied = select(
        *(getattr(DataIdentifier, column) for column in _KEPT), literal(utcnow()).label("deleted_at")
    ).where(condition)
    session.execute(insert(deleted_dids).from_select([*_KEPT, "deleted_at"], copied))


def restore(session: Session, keys: Sequence[DIDKey]) -> set[DIDKey]:
    """Bring back the removed DIDs among ``keys`` whose scope still exists and whose name is free;
    returns the keys restored."""
    restored: set[DIDKey] = set()
    for part in chunks(list(keys), 1000):
        taken = (
            select(DataIdentifier.scope)
            .where(DataIdentifier.scope == deleted_dids.c.scope, DataIdentifier.name == deleted_dids.c.name)
            .exists()
        )
        wanted = (
            keys_in((deleted_dids.c.scope, deleted_dids.c.name), part),
            ~taken,
            deleted_dids.c.scope.in_(select(Scope.scope)),
        )
        found = set(
            session.execute(select(deleted_dids.c.scope, deleted_dids.c.name).where(*wanted)).tuples()
        )
        if not found:
            continue
        is_collection = deleted_dids.c.did_type.in_(COLLECTIONS)
        values: dict[str, ColumnElement[Any]] = {column: deleted_dids.c[column] for column in _KEPT}
        # Content does not come back: a collection is restored empty; nothing comes back expired.
        values.update(
            expired_at=literal(None),
            deleted_at=literal(None),
            updated_at=literal(utcnow()),
            bytes=_unless(is_collection, deleted_dids.c.bytes),
            length=_unless(is_collection, deleted_dids.c.length),
        )
        session.execute(
            insert(DataIdentifier).from_select(list(values), select(*values.values()).where(*wanted))
        )
        session.execute(
            delete(deleted_dids).where(keys_in((deleted_dids.c.scope, deleted_dids.c.name), list(found)))
        )
        restored |= found
    return restored


def _unless(condition: ColumnElement[bool], value: ColumnElement[int]) -> ColumnElement[int]:
    return case((condition, literal(0)), else_=value)
