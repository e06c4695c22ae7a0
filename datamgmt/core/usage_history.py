"""Usage history: snapshots of account and RSE usage rows as they change.

abacus calls :func:`snapshot` after each pass: one ``INSERT … SELECT`` per table copies every
usage row whose values differ from its newest snapshot (or that has none), so a quiet
catalogue adds nothing and a busy one gains at most one row per usage row per pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, insert, literal, select
from sqlalchemy.orm import Session, aliased

from datamgmt.core.db.models import (
    Account,
    AccountLimit,
    AccountUsage,
    AccountUsageHistory,
    RSEUsage,
    RSEUsageHistory,
)
from datamgmt.core.db.types import utcnow


def snapshot(session: Session) -> int:
    """Record the usage rows that changed since their last snapshot; returns how many."""
    now = utcnow()
    latest, newest = aliased(AccountUsageHistory), aliased(AccountUsageHistory)
    last_account = (
        select(func.max(newest.updated_at))
        .where(newest.account == AccountUsage.account, newest.rse_id == AccountUsage.rse_id)
        .scalar_subquery()
    )
    same_account = (
        select(literal(1))
        .where(
            latest.account == AccountUsage.account,
            latest.rse_id == AccountUsage.rse_id,
            latest.updated_at == last_account,
            latest.files == AccountUsage.files,
            latest.bytes == AccountUsage.bytes,
        )
        .exists()
    )
    written = (
        session.execute(
            insert(AccountUsageHistory).from_select(
                ["account", "rse_id", "files", "bytes", "updated_at"],
                select(
                    AccountUsage.account,
                    AccountUsage.rse_id,
                    AccountUsage.files,
                    AccountUsage.bytes,
                    literal(now, AccountUsageHistory.updated_at.type),
                ).where(~same_account),
            )
        ).rowcount
        or 0
    )
    seen, recent = aliased(RSEUsageHistory), aliased(RSEUsageHistory)
    last_rse = (
        select(func.max(recent.updated_at))
        .where(recent.rse_id == RSEUsage.rse_id, recent.source == RSEUsage.source)
        .scalar_subquery()
    )
    same_rse = (
        select(literal(1))
        .where(
            seen.rse_id == RSEUsage.rse_id,
            seen.source == RSEUsage.source,
            seen.updated_at == last_rse,
            seen.used == RSEUsage.used,
            func.coalesce(seen.free, -1) == func.coalesce(RSEUsage.free, -1),
            func.coalesce(seen.files, -1) == func.coalesce(RSEUsage.files, -1),
        )
        .exists()
    )
    written += (
        session.execute(
            insert(RSEUsageHistory).from_select(
                ["rse_id", "source", "used", "free", "files", "updated_at"],
                select(
                    RSEUsage.rse_id,
                    RSEUsage.source,
                    RSEUsage.used,
                    RSEUsage.free,
                    RSEUsage.files,
                    literal(now, RSEUsageHistory.updated_at.type),
                ).where(~same_rse),
            )
        ).rowcount
        or 0
    )
    return written


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
    for row in session.scalars(query.execution_options(yield_per=1000)):
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
    for row in session.execute(query.execution_options(yield_per=1000)):
        yield {
            "rse_id": rse_id,
            "rse": rse,
            "account": row.account,
            "used_files": row.files or 0,
            "used_bytes": row.bytes or 0,
            "quota_bytes": row.quota,
        }
