"""Accounts that follow DIDs (Rucio's ``dids_followed``): who gets told when a DID changes.

A follower row goes with its DID (``ON DELETE CASCADE``)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from datamgmt.core.account import get_account
from datamgmt.core.db.models import DIDFollowed
from datamgmt.core.db.session import is_postgresql
from datamgmt.core.db.types import utcnow
from datamgmt.core.did import get_did_row


def follow(session: Session, scope: str, name: str, account: str) -> None:
    """``account`` follows the DID; following twice changes nothing."""
    row = get_did_row(session, scope, name)
    get_account(session, account)
    now = utcnow()
    values = {
        "scope": scope,
        "name": name,
        "account": account,
        "did_type": row.did_type,
        "created_at": now,
        "updated_at": now,
    }
    dialect = postgresql if is_postgresql(session) else sqlite
    session.execute(dialect.insert(DIDFollowed).values(**values).on_conflict_do_nothing())


def unfollow(session: Session, scope: str, name: str, account: str) -> None:
    get_did_row(session, scope, name)
    session.execute(
        delete(DIDFollowed).where(
            DIDFollowed.scope == scope, DIDFollowed.name == name, DIDFollowed.account == account
        )
    )


def followers(session: Session, scope: str, name: str) -> list[dict[str, str]]:
    get_did_row(session, scope, name)
    rows = session.scalars(
        select(DIDFollowed.account)
        .where(DIDFollowed.scope == scope, DIDFollowed.name == name)
        .order_by(DIDFollowed.account)
    )
    return [{"user": account} for account in rows]
