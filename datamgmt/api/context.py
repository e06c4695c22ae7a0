"""Per-request state: the catalogue transaction, the issuer, and the permission check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import current_app, g, request
from sqlalchemy.orm import Session

from datamgmt.core.db.session import transaction
from datamgmt.core.permission import has_permission
from datamgmt.exceptions import AccessDenied


@contextmanager
def unit_of_work(read_only: bool | None = None) -> Iterator[Session]:
    """One transaction on the app's catalogue, committed when the block succeeds.

    GET and HEAD requests read only unless a view says otherwise (logging in writes a
    token), so on SQLite they never queue behind the daemons' writes.
    """
    if read_only is None:
        read_only = request.method in ("GET", "HEAD")
    with transaction(current_app.config.get("DATABASE_URL"), read_only=read_only) as session:
        yield session


def issuer() -> str | None:
    """The authenticated account of this request (None on public endpoints)."""
    return g.get("issuer")


def authorize(session: Session, action: str, **kwargs: Any) -> str:
    """Raise AccessDenied unless the issuer may do ``action``; returns the issuer."""
    account = issuer()
    if not has_permission(session, account, action, kwargs):
        raise AccessDenied(f"Account {account} can not {action.replace('_', ' ')}.")
    return account  # type: ignore[return-value]
