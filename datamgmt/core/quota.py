"""Account quotas: local limits (account x RSE), global limits (account x RSE expression), usage.

Semantics are Rucio's (reference §8): a missing local limit means 0 bytes, ``-1`` means
unlimited, admins are exempt.  Usage is charged per lock when the lock is created and
released when it is removed, in the same transaction, so ``account_usage`` is exact at
every commit; :func:`recount_usage` recomputes it from the locks to prove it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from datamgmt.core import validation
from datamgmt.core.account import LIVE_ACCOUNT, is_admin, require_account
from datamgmt.core.db.models import RSE, AccountGlobalLimit, AccountLimit, AccountUsage, Lock
from datamgmt.core.db.rows import FoundWrite, put, rowcount
from datamgmt.core.db.types import utcnow
from datamgmt.core.expression import rse_ids_for
from datamgmt.core.rse import LIVE_RSE, get_rse_id, rse_names_by_id
from datamgmt.exceptions import InputValidationError

UNLIMITED = -1

#: (account, rse_id) -> (files, bytes)
UsageDeltas = Mapping[tuple[str, str], tuple[int, int]]


def _limit_value(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not UNLIMITED <= value < 2**63:
        raise InputValidationError("a limit is a number of bytes >= 0 (below 2^63), or -1 for unlimited")
    return value


# --- limits ----------------------------------------------------------------------------------
_PUT_LIMIT = FoundWrite(
    AccountLimit, and_(LIVE_RSE, LIVE_ACCOUNT), {"rse_id": RSE.id}, ("account", "bytes"), ("bytes",)
)


def set_local_account_limit(session: Session, account: str, rse: str, nbytes: int) -> None:
    """Set the limit of an existing account on a live RSE: both are checked by the write itself."""
    value = _limit_value(nbytes)
    named = isinstance(account, str) and isinstance(rse, str)
    if not named or not _PUT_LIMIT(session, account=account, rse=rse, bytes=value):
        require_account(session, account)
        get_rse_id(session, rse)  # one of the two raises


def delete_local_account_limit(session: Session, account: str, rse: str) -> bool:
    rse_id = get_rse_id(session, rse)
    result = session.execute(
        delete(AccountLimit).where(AccountLimit.account == account, AccountLimit.rse_id == rse_id)
    )
    return rowcount(result) > 0


def set_global_account_limit(session: Session, account: str, rse_expression: str, nbytes: int) -> None:
    """A limit over the RSEs an expression resolves to (checked to resolve now)."""
    rse_ids_for(session, rse_expression)
    value = _limit_value(nbytes)
    put(session, AccountGlobalLimit, (account, rse_expression), bytes=value)


def delete_global_account_limit(session: Session, account: str, rse_expression: str) -> bool:
    result = session.execute(
        delete(AccountGlobalLimit).where(
            AccountGlobalLimit.account == account, AccountGlobalLimit.rse_expression == rse_expression
        )
    )
    return rowcount(result) > 0


def get_local_account_limits(session: Session, account: str) -> dict[str, int]:
    """RSE id -> bytes (-1 unlimited) for every RSE with a limit row."""
    rows = session.execute(
        select(AccountLimit.rse_id, AccountLimit.bytes).where(AccountLimit.account == account)
    )
    return dict(rows.tuples().all())


def get_global_account_limits(session: Session, account: str) -> dict[str, int]:
    """RSE expression -> bytes."""
    rows = session.execute(
        select(AccountGlobalLimit.rse_expression, AccountGlobalLimit.bytes).where(
            AccountGlobalLimit.account == account
        )
    )
    return dict(rows.tuples().all())


# --- usage -----------------------------------------------------------------------------------
def usage_by_rse(session: Session, account: str) -> dict[str, tuple[int, int]]:
    """RSE id -> (files, bytes) charged to the account."""
    rows = session.execute(
        select(AccountUsage.rse_id, AccountUsage.files, AccountUsage.bytes).where(
            AccountUsage.account == account
        )
    )
    return {rse_id: (files, nbytes) for rse_id, files, nbytes in rows}


def _remaining(limit: int | None, used: int) -> int | None:
    if limit is None:
        return None
    return UNLIMITED if limit == UNLIMITED else limit - used


def get_local_account_usage(session: Session, account: str, rse: str | None = None) -> list[dict[str, Any]]:
    """Usage per RSE with its limit, Rucio's fields: rse_id, rse, files, bytes, bytes_limit,
    bytes_remaining (RSEs with a limit or usage)."""
    validation.account_name(account)
    usage = usage_by_rse(session, account)
    limits = get_local_account_limits(session, account)
    rse_ids = sorted(set(usage) | set(limits))
    if rse is not None:
        wanted = get_rse_id(session, rse)
        rse_ids = [r for r in rse_ids if r == wanted] or [wanted]
    names = rse_names_by_id(session, rse_ids)
    result = []
    for rse_id in rse_ids:
        files, nbytes = usage.get(rse_id, (0, 0))
        limit = limits.get(rse_id, 0)
        result.append(
            {
                "rse_id": rse_id,
                "rse": names.get(rse_id),
                "files": files,
                "bytes": nbytes,
                "bytes_limit": limit,
                "bytes_remaining": _remaining(limit, nbytes),
            }
        )
    return result


def get_global_account_usage(session: Session, account: str) -> list[dict[str, Any]]:
    """Usage summed over each global limit's expression: rse_expression, files, bytes,
    bytes_limit, bytes_remaining."""
    usage = usage_by_rse(session, account)
    result = []
    for expression, limit in sorted(get_global_account_limits(session, account).items()):
        ids = rse_ids_for(session, expression)
        files = sum(usage.get(r, (0, 0))[0] for r in ids)
        nbytes = sum(usage.get(r, (0, 0))[1] for r in ids)
        result.append(
            {
                "rse_expression": expression,
                "files": files,
                "bytes": nbytes,
                "bytes_limit": limit,
                "bytes_remaining": _remaining(limit, nbytes),
            }
        )
    return result


def change_usage(session: Session, deltas: UsageDeltas) -> None:
    """Add (files, bytes) to each (account, RSE) usage row, creating missing rows.

    One upsert per pair (the pairs of a rule are its RSEs, a handful, never its files).
    INSERT ... ON CONFLICT DO UPDATE keeps concurrent first writers of a pair from colliding,
    and the pairs go in key order, so two writers of the same rows wait for each other
    instead of deadlocking.
    """
    upsert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    for (account, rse_id), (files, nbytes) in sorted(deltas.items()):
        if not files and not nbytes:
            continue
        statement = upsert(AccountUsage.__table__).values(
            account=account, rse_id=rse_id, files=files, bytes=nbytes, created_at=now, updated_at=now
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["account", "rse_id"],
                set_={
                    "files": AccountUsage.__table__.c.files + files,
                    "bytes": AccountUsage.__table__.c.bytes + nbytes,
                    "updated_at": now,
                },
            )
        )


def recount_usage(session: Session, account: str | None = None) -> dict[tuple[str, str], tuple[int, int]]:
    """(account, rse_id) -> (files, bytes) recomputed from the locks: what usage must equal."""
    query = select(Lock.account, Lock.rse_id, func.count(), func.coalesce(func.sum(Lock.bytes), 0)).group_by(
        Lock.account, Lock.rse_id
    )
    if account is not None:
        query = query.where(Lock.account == account)
    return {(a, r): (int(n), int(b)) for a, r, n, b in session.execute(query)}


# --- what is left ----------------------------------------------------------------------------
@dataclass(frozen=True)
class GlobalQuota:
    """Bytes left under one global limit and the RSEs it covers."""

    rse_expression: str
    rse_ids: frozenset[str]
    left: int


@dataclass(frozen=True)
class QuotaLeft:
    """An account's quota for placement: ``local`` maps RSE id -> bytes left (-1 unlimited),
    ``global_limits`` the applicable global limits; ``unlimited`` for admins and waived rules."""

    local: dict[str, int]
    global_limits: tuple[GlobalQuota, ...]
    unlimited: bool

    def for_rse(self, rse_id: str) -> int:
        """Bytes the account may still lock on one RSE, local and global limits combined."""
        if self.unlimited:
            return UNLIMITED
        left = self.local.get(rse_id, 0)
        for limit in self.global_limits:
            if rse_id in limit.rse_ids:
                room = max(limit.left, 0)
                left = room if left == UNLIMITED else min(left, room)
        return left


def quota_left(session: Session, account: str, rse_ids: Iterable[str], waived: bool = False) -> QuotaLeft:
    """What ``account`` may still lock on ``rse_ids``; ``waived`` (approved rules) or admin: all."""
    if waived or is_admin(session, account):
        return QuotaLeft({}, (), True)
    wanted = list(rse_ids)
    usage = usage_by_rse(session, account)
    limits = get_local_account_limits(session, account)
    local = {}
    for rse_id in wanted:
        limit = limits.get(rse_id, 0)
        local[rse_id] = UNLIMITED if limit == UNLIMITED else max(limit - usage.get(rse_id, (0, 0))[1], 0)
    global_limits = []
    for expression, limit in get_global_account_limits(session, account).items():
        if limit == UNLIMITED:
            continue
        ids = frozenset(rse_ids_for(session, expression))
        used = sum(usage.get(r, (0, 0))[1] for r in ids)
        global_limits.append(GlobalQuota(expression, ids, limit - used))
    return QuotaLeft(local, tuple(global_limits), False)
