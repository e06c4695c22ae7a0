"""The login lockout and the flood limit: events counted per key (a source address, an identity).

Logins count their failures per source and per identity; the flood limit (api/flood.py)
counts every login or unauthenticated request per source, under keys of its own.

A source or identity that fails ``max_failures`` times within ``window`` seconds is locked
for ``lockout`` seconds, during which its logins are refused with 429 before any password
is hashed, so a flood of guesses costs the server no scrypt and no write lock.  The counts
live in the catalogue (``login_failures``), so every API worker and host sees the same ones;
keys are stored hashed, so a password typed into the username field is never kept readable.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from datamgmt.core.db.models import LoginFailure
from datamgmt.core.db.session import is_postgresql
from datamgmt.core.db.types import utcnow

#: Unlocked counts older than this are dropped, whatever their kind (each window restarts a stale count anyway).
STALE_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Limit:
    """Lock a key after ``max_failures`` failures within ``window`` seconds, for ``lockout`` seconds.

    ``max_failures`` 0 turns the limit off.
    """

    max_failures: int
    window: int
    lockout: int


def source_key(address: str) -> str:
    return "source:" + address


def identity_key(identity: str) -> str:
    return "identity:" + identity


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def retry_after(session: Session, keys: list[str], now: datetime | None = None) -> int:
    """Seconds until the last of ``keys`` is unlocked; 0 when none is locked."""
    now = now or utcnow()
    until = session.scalar(
        select(func.max(LoginFailure.locked_until)).where(
            LoginFailure.key_hash.in_([_hash(k) for k in keys]), LoginFailure.locked_until > now
        )
    )
    return max(1, math.ceil((until - now).total_seconds())) if until is not None else 0


def flood_key(address: str) -> str:
    return "flood:" + address


def record_event(session: Session, limits: dict[str, Limit], now: datetime | None = None) -> None:
    """Count one event (a failed login, a request) against each key of ``limits``, locking those at their limit.

    Each statement is atomic, so concurrent failures from several workers all count.  Counts
    older than a day and unlocked are dropped here, so the table stays small.
    """
    now = now or utcnow()
    active = {_hash(key): limit for key, limit in limits.items() if limit.max_failures > 0}
    if not active:
        return
    # Rows of other kinds (with longer windows) are counted here too: only forget what no window can still need.
    horizon = now - max(STALE_AFTER, timedelta(seconds=max(limit.window for limit in active.values())))
    session.execute(
        delete(LoginFailure).where(
            LoginFailure.window_start < horizon,
            LoginFailure.locked_until.is_(None) | (LoginFailure.locked_until < now),
        )
    )
    dialect = postgresql if is_postgresql(session) else sqlite
    session.execute(
        dialect.insert(LoginFailure)
        .values([{"key_hash": h, "failures": 0, "window_start": now} for h in active])
        .on_conflict_do_nothing()
    )
    for key_hash, limit in active.items():
        fresh = LoginFailure.window_start > now - timedelta(seconds=limit.window)
        session.execute(
            update(LoginFailure)
            .where(LoginFailure.key_hash == key_hash)
            .values(
                failures=case((fresh, LoginFailure.failures + 1), else_=1),
                window_start=case((fresh, LoginFailure.window_start), else_=now),
            )
        )
        # At the limit: lock, and start a new window so the lockout's end gives a fresh allowance.
        session.execute(
            update(LoginFailure)
            .where(LoginFailure.key_hash == key_hash, LoginFailure.failures >= limit.max_failures)
            .values(failures=0, window_start=now, locked_until=now + timedelta(seconds=limit.lockout))
        )


def forget(session: Session, keys: list[str]) -> None:
    """Clear the counts of ``keys`` (an identity that logged in correctly)."""
    session.execute(delete(LoginFailure).where(LoginFailure.key_hash.in_([_hash(k) for k in keys])))
