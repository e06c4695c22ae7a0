"""Declarations that a replica is bad, suspicious or temporarily unavailable, and their history.

Each declaration is a row of ``bad_replicas`` (Rucio's table), which then moves on with the
replica: a BAD row becomes RECOVERED when a new copy lands where the bad one was
(:func:`resolve`, called by the transfer outcome and by a client setting the replica
AVAILABLE), LOST when the necromancer finds no other copy, DELETED when the reaper removes a
bad replica nobody needed.  A SUSPICIOUS row only records a report: monitoring and operators
read them (``GET /replicas/suspicious``) and decide; nothing changes on the replica.  A
TEMPORARY_UNAVAILABLE row takes the replica out of reads until its ``expires_at``.

This module records and lists; what a BAD replica means for its locks is
:mod:`datamgmt.core.replica_state`'s, and its recovery :mod:`datamgmt.core.necromancer`'s.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, func, insert, select, update
from sqlalchemy.orm import Session, aliased

from datamgmt.core.db import listing
from datamgmt.core.db.constants import BadFilesStatus, ReplicaState
from datamgmt.core.db.models import BadReplica, Replica
from datamgmt.core.db.rows import rowcount
from datamgmt.core.db.types import utcnow
from datamgmt.core.keys import DIDKey, ReplicaKey, chunks, keys_in
from datamgmt.core.rse import rse_names_by_id

#: Rucio refuses TEMPORARY_UNAVAILABLE declarations that last longer than this.
LONGEST_UNAVAILABILITY = timedelta(days=30)
#: How far back ``GET /replicas/suspicious`` looks when the caller does not say (Rucio's default).
SUSPICIOUS_WINDOW = timedelta(days=10)


def existing(session: Session, rse_id: str, keys: Sequence[DIDKey]) -> dict[DIDKey, tuple[int, bool]]:
    """The replicas of ``keys`` on the RSE: their bytes and whether a BAD declaration is open."""
    found: dict[DIDKey, tuple[int, bool]] = {}
    open_bad = func.max(case((BadReplica.state == BadFilesStatus.BAD, 1), else_=0))
    for part in chunks(list(dict.fromkeys(keys))):
        rows = session.execute(
            select(Replica.scope, Replica.name, Replica.bytes, open_bad)
            .outerjoin(
                BadReplica,
                and_(
                    BadReplica.scope == Replica.scope,
                    BadReplica.name == Replica.name,
                    BadReplica.rse_id == Replica.rse_id,
                ),
            )
            .where(Replica.rse_id == rse_id, keys_in((Replica.scope, Replica.name), part))
            .group_by(Replica.scope, Replica.name, Replica.bytes)
        )
        found.update({(scope, name): (size or 0, bool(bad)) for scope, name, size, bad in rows})
    return found


def record(
    session: Session,
    rse_id: str,
    keys: Sequence[DIDKey],
    sizes: dict[DIDKey, tuple[int, bool]],
    state: BadFilesStatus,
    reason: str | None,
    account: str,
    expires_at: datetime | None = None,
) -> None:
    """Insert one declaration row per replica, in one statement."""
    now = utcnow()
    rows = [
        {
            "scope": scope,
            "name": name,
            "rse_id": rse_id,
            "state": state,
            "created_at": now,
            "updated_at": now,
            "reason": (reason or "")[:255] or None,
            "account": account,
            "bytes": sizes[(scope, name)][0],
            "expires_at": expires_at,
        }
        for scope, name in dict.fromkeys(keys)
    ]
    if rows:
        session.execute(insert(BadReplica), rows)


def resolve(
    session: Session, keys: Sequence[ReplicaKey], from_state: BadFilesStatus, to_state: BadFilesStatus
) -> int:
    """Move the open ``from_state`` declarations of these replicas to ``to_state``; returns how many."""
    moved = 0
    now = utcnow()
    for part in chunks(list(dict.fromkeys(keys))):
        moved += (
            rowcount(
                session.execute(
                    update(BadReplica)
                    .where(
                        keys_in((BadReplica.scope, BadReplica.name, BadReplica.rse_id), part),
                        BadReplica.state == from_state,
                    )
                    .values(state=to_state, updated_at=now)
                    .execution_options(synchronize_session=False)
                )
            )
            or 0
        )
    return moved


def set_temporarily_unavailable(session: Session, rse_id: str, keys: Sequence[DIDKey]) -> None:
    """AVAILABLE replicas leave reads until their declaration expires; their locks stay OK."""
    for part in chunks(list(keys)):
        session.execute(
            update(Replica)
            .where(
                Replica.rse_id == rse_id,
                keys_in((Replica.scope, Replica.name), part),
                Replica.state == ReplicaState.AVAILABLE,
            )
            .values(state=ReplicaState.TEMPORARY_UNAVAILABLE)
            .execution_options(synchronize_session=False)
        )


def expire_unavailability(session: Session, limit: int) -> int:
    """Replicas whose TEMPORARY_UNAVAILABLE declaration has expired become AVAILABLE again.

    The declaration is closed (DELETED, as Rucio's minos does) whether or not the replica was
    still unavailable: a replica declared BAD meanwhile stays BAD."""
    expired = (
        session.execute(
            select(BadReplica.scope, BadReplica.name, BadReplica.rse_id)
            .where(
                BadReplica.state == BadFilesStatus.TEMPORARY_UNAVAILABLE, BadReplica.expires_at <= utcnow()
            )
            .limit(limit)
        )
        .tuples()
        .all()
    )
    for part in chunks(list(dict.fromkeys(expired))):
        session.execute(
            update(Replica)
            .where(
                keys_in((Replica.scope, Replica.name, Replica.rse_id), part),
                Replica.state == ReplicaState.TEMPORARY_UNAVAILABLE,
            )
            .values(state=ReplicaState.AVAILABLE)
            .execution_options(synchronize_session=False)
        )
    return resolve(session, expired, BadFilesStatus.TEMPORARY_UNAVAILABLE, BadFilesStatus.DELETED)


def list_states(
    session: Session,
    state: BadFilesStatus | None,
    rse_id: str | None,
    younger_than: datetime | None,
    older_than: datetime | None,
    limit: int | None,
) -> Iterator[dict[str, Any]]:
    """Declarations in ``state`` (all states when None), newest first, streamed, with the path
    of the replica while it exists (for PFNs)."""
    query = select(
        BadReplica.scope,
        BadReplica.name,
        BadReplica.rse_id,
        BadReplica.state,
        BadReplica.reason,
        BadReplica.created_at,
        BadReplica.updated_at,
        Replica.path,
    ).outerjoin(
        Replica,
        and_(
            Replica.scope == BadReplica.scope,
            Replica.name == BadReplica.name,
            Replica.rse_id == BadReplica.rse_id,
        ),
    )
    if state is not None:
        query = query.where(BadReplica.state == state)
    if rse_id is not None:
        query = query.where(BadReplica.rse_id == rse_id)
    if younger_than is not None:
        query = query.where(BadReplica.created_at >= younger_than)
    if older_than is not None:
        query = query.where(BadReplica.created_at <= older_than)
    query = query.order_by(BadReplica.created_at.desc(), BadReplica.scope, BadReplica.name)
    if limit:
        query = query.limit(limit)
    names = rse_names_by_id(session)
    for row in listing.rows(session, query):
        yield {
            "scope": row.scope,
            "name": row.name,
            "rse": names.get(row.rse_id),
            "rse_id": row.rse_id,
            "state": row.state.name,
            "reason": row.reason,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            "path": row.path,
        }


def summary(
    session: Session, rse_ids: set[str] | None, from_date: datetime | None, to_date: datetime | None
) -> list[dict[str, Any]]:
    """Declarations counted per incident (RSE, day, reason), one count per state, as Rucio's UI shows them."""
    day = func.date(BadReplica.created_at)
    query = select(func.count(), day, BadReplica.rse_id, BadReplica.state, BadReplica.reason)
    if rse_ids is not None:
        query = query.where(BadReplica.rse_id.in_(rse_ids))
    if from_date is not None:
        query = query.where(BadReplica.created_at > from_date)
    if to_date is not None:
        query = query.where(BadReplica.created_at < to_date)
    query = query.group_by(day, BadReplica.rse_id, BadReplica.reason, BadReplica.state)
    incidents: dict[tuple[str, datetime, str | None], dict[str, Any]] = {}
    names = rse_names_by_id(session)
    for count, when, rse_id, state, reason in session.execute(query):
        started = datetime.strptime(str(when)[:10], "%Y-%m-%d")  # a date on PostgreSQL, a string on SQLite
        incident = incidents.setdefault(
            (rse_id, started, reason),
            {"rse_id": rse_id, "rse": names.get(rse_id), "created_at": started, "reason": reason},
        )
        incident[state.name] = count
    return sorted(incidents.values(), key=lambda i: (i["created_at"], i["rse"] or "", i["reason"] or ""))


def suspicious(
    session: Session, rse_ids: set[str] | None, younger_than: datetime | None, nattempts: int | None
) -> list[dict[str, Any]]:
    """Replicas declared more than ``nattempts`` times since ``younger_than`` (default: ten days)
    and not declared BAD, RECOVERED or DELETED in that window: suspicious reports that nobody
    has acted on yet (Rucio's ``get_suspicious_files``); ``cnt`` says how often."""
    since = younger_than or utcnow() - SUSPICIOUS_WINDOW
    reports = aliased(BadReplica)
    settled = exists().where(
        BadReplica.scope == reports.scope,
        BadReplica.name == reports.name,
        BadReplica.rse_id == reports.rse_id,
        BadReplica.created_at >= since,
        BadReplica.state.in_([BadFilesStatus.BAD, BadFilesStatus.RECOVERED, BadFilesStatus.DELETED]),
    )
    query = (
        select(func.count(), reports.scope, reports.name, reports.rse_id, func.min(Replica.created_at))
        .join(
            Replica,
            and_(
                Replica.scope == reports.scope, Replica.name == reports.name, Replica.rse_id == reports.rse_id
            ),
        )
        .where(reports.created_at >= since, ~settled)
        .group_by(reports.rse_id, reports.scope, reports.name)
        .having(func.count() > (nattempts or 0))
        .order_by(reports.scope, reports.name, reports.rse_id)
    )
    if rse_ids is not None:
        query = query.where(reports.rse_id.in_(rse_ids))
    names = rse_names_by_id(session)
    return [
        {
            "scope": scope,
            "name": name,
            "rse": names.get(rse_id),
            "rse_id": rse_id,
            "cnt": count,
            "created_at": created_at,
        }
        for count, scope, name, rse_id, created_at in session.execute(query)
    ]
