"""What collections used to hold (Rucio's ``contents_history``).

Every path that undoes an attachment (a detach, the undertaker emptying or removing a
collection) first copies the rows it is about to delete here, with one ``INSERT … SELECT``,
so ``GET /dids/<did>/dids/history`` (:func:`datamgmt.core.did_listing.list_content_history`) can answer what a collection once held.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, insert, literal, select
from sqlalchemy.orm import Session

from datamgmt.core.db.models import Content, ContentHistory
from datamgmt.core.db.types import utcnow

_COPIED = (
    "scope",
    "name",
    "child_scope",
    "child_name",
    "did_type",
    "child_type",
    "bytes",
    "adler32",
    "md5",
    "created_at",
    "updated_at",
)


def record_removal(session: Session, condition: ColumnElement[bool]) -> None:
    """Keep the ``contents`` rows matching ``condition``, which the caller is about to delete."""
    rows = select(
        *(getattr(Content, column) for column in _COPIED), literal(utcnow()).label("deleted_at")
    ).where(condition)
    session.execute(insert(ContentHistory).from_select([*_COPIED, "deleted_at"], rows))
