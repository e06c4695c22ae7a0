"""Usage history: snapshots of account and RSE usage rows as they change.

abacus calls :func:`snapshot` after each pass: one ``INSERT … SELECT`` per table copies every
usage row whose values differ from its newest snapshot (or that has none), so a quiet
catalogue adds nothing and a busy one gains at most one row per usage row per pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, literal, select
from sqlalchemy.orm import Session, aliased

from datamgmt.core.db import listing
from datamgmt.core.db.models import (
    Account,
    AccountLimit,
    AccountUsage,
    AccountUsageHistory,
    RSEUsage,
    RSEUsageHistory,
)
from datamgmt.core.db.rows import rowcount
from datamgmt.core.db.types import utcnow


def snapshot(session: Session) -> int:
    """Record the usage rows that changed since their last snapshot; returns how many."""
    now = utcnow()
    return _copy_changed(
        session, AccountUsage, AccountUsageHistory, ("account", "rse_id"), ("files", "bytes"), now
    ) + _copy_changed(
        session, RSEUsage, RSEUsageHistory, ("rse_id", "source"), ("used", "free", "files"), now
    )


def _copy_changed(
    session: Session,
    live: type[Any],
    history: type[Any],
    keys: tuple[str, ...],
    values: tuple[str, ...],
    now: datetime,
) -> int:
    """One ``INSERT … SELECT``: copy each ``live`` row whose ``values`` differ from the newest
    ``history`` row with its ``keys`` (or that has none), stamped ``now``; returns how many.

    Values compare with NULL as -1, so an unknown ``free`` or ``files`` equals itself."""
    latest, newest = aliased(history), aliased(history)
    newest_at = (
        select(func.max(newest.updated_at))
        .where(*(getattr(newest, key) == getattr(live, key) for key in keys))
        .scalar_subquery()
    )
    unchanged = (
        select(literal(1))
        .where(
            *(getattr(latest, key) == getattr(live, key) for key in keys),
            latest.updated_at == newest_at,
            *(
                func.coalesce(getattr(latest, value), -1) == func.coalesce(getattr(live, value), -1)
                for value in values
            ),
        )
        .exists()
    )
    columns = (*keys, *values)
    copied = select(*(getattr(live, column) for column in columns), literal(now, history.updated_at.type))
    statement = insert(history).from_select([*columns, "updated_at"], copied.where(~unchanged))
    return rowcount(session.execute(statement)) or 0


def account_usage_history(session: Session, account: str, rse_id: str) -> list[dict[str, Any]]:
    """An account's usage of an RSE over time, oldest first (Rucio's ``get_usage_history``)."""
    rows = session.execute(
        select(AccountUsageHistory.bytes, AccountUsageHistory.files, AccountUsageHistory.updated_at)
        .where(AccountUsageHistory.account == account, AccountUsageHistory.rse_id == rse_id)
        .order_by(AccountUsageHistory.updated_at)
    )
    return [{"bytes": size, "files": files, "updated_at": when} for size, files, when in rows]


def rse_usage_history(
    session: Session, rse_id: str, rse: str, source: str | None
) -> Iterator[dict[str, Any]]:
    """An RSE's usage per source over time, newest first (Rucio's ``list_rse_usage_history``)."""
    query = (
        select(RSEUsageHistory)
        .where(RSEUsageHistory.rse_id == rse_id)
        .order_by(RSEUsageHistory.updated_at.desc())
    )
    if source:
        query = query.where(RSEUsageHistory.source == source)
    for row in listing.scalars(session, query):
        used, free = row.used or 0, row.free or 0
        yield {
            "rse_id": rse_id,
            "rse": rse,
            "source": row.source,
            "used": used,
            "free": free,
            "total": used + free,
            "updated_at": row.updated_at,
        }


def rse_account_usage(session: Session, rse_id: str, rse: str) -> Iterator[dict[str, Any]]:
    """Every account's usage of, and quota on, one RSE (Rucio's ``get_rse_account_usage``)."""
    query = (
        select(Account.account, AccountUsage.files, AccountUsage.bytes, AccountLimit.bytes.label("quota"))
        .outerjoin(AccountUsage, (AccountUsage.account == Account.account) & (AccountUsage.rse_id == rse_id))
        .outerjoin(AccountLimit, (AccountLimit.account == Account.account) & (AccountLimit.rse_id == rse_id))
        .order_by(Account.account)
    )
    for row in listing.rows(session, query):
        yield {
            "rse_id": rse_id,
            "rse": rse,
            "account": row.account,
            "used_files": row.files or 0,
            "used_bytes": row.bytes or 0,
            "quota_bytes": row.quota,
        }
