"""The reaper's catalogue side: what may be deleted on an RSE, how much, and the bookkeeping after.

A replica may go when nothing holds it (``lock_cnt = 0``), its tombstone has passed, and it
is not the source of a QUEUED or SUBMITTED transfer.  How much goes depends on the RSE:
everything eligible when it is greedy (attribute ``greedyDeletion`` or ``[reaper] greedy``);
otherwise just enough to bring free space (``rse_usage`` source ``storage``) back up to the
``MinFreeSpace`` limit, least recently used first (the tombstone of an unlocked replica is its
last access); with no shortfall only replicas tombstoned OBSOLETE go.

Candidates are leased (:mod:`datamgmt.core.claim`) and marked BEING_DELETED, so many reaper
instances share an RSE safely and the judge does not count on them any more.  The storage
is cleaned first; :func:`forget_replicas` then drops the catalogue rows, and a failed
physical deletion keeps the row (:func:`deletion_failed`) for a later retry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, exists, select, tuple_, update
from sqlalchemy.orm import Session

from datamgmt.config import get_config
from datamgmt.core import claim
from datamgmt.core.db.constants import OBSOLETE, ReplicaState, RequestState, RuleState
from datamgmt.core.db.models import (
    RSE,
    Content,
    DataIdentifier,
    Lock,
    Replica,
    Request,
    RSEAttribute,
    RSELimit,
    RSEUsage,
    Rule,
    Share,
    Source,
)
from datamgmt.core.db.session import is_postgresql
from datamgmt.core.db.types import utcnow
from datamgmt.core.did import detach, list_all_parents
from datamgmt.core.message import add_messages
from datamgmt.core.replica import record_rse_delta
from datamgmt.core.rse import attr_value
from datamgmt.exceptions import UnsupportedOperation

DIDKey = tuple[str, str]
#: Replica states the reaper may remove (BEING_DELETED: an earlier attempt failed or died).
REAPABLE = (ReplicaState.AVAILABLE, ReplicaState.UNAVAILABLE, ReplicaState.BAD, ReplicaState.BEING_DELETED)
#: Transfers whose sources must stay.
ACTIVE_TRANSFERS = (RequestState.QUEUED, RequestState.SUBMITTING, RequestState.SUBMITTED)
#: Usage source the reaper reads free space from, and keeps current as it frees space.
STORAGE_SOURCE = "storage"


def deletable_rses(session: Session) -> list[tuple[str, str]]:
    """(id, name) of live RSEs that allow deletion."""
    return list(
        session.execute(
            select(RSE.id, RSE.rse).where(RSE.deleted.is_(False), RSE.availability_delete.is_(True)).order_by(RSE.rse)
        ).tuples()
    )


def bytes_to_free(session: Session, rse_id: str) -> int | None:
    """Bytes the RSE must free now; ``None`` means greedy (all eligible), 0 only OBSOLETE replicas."""
    greedy = session.scalar(
        select(RSEAttribute.value).where(RSEAttribute.rse_id == rse_id, RSEAttribute.key == "greedyDeletion")
    )
    is_greedy = attr_value(greedy) is True if greedy is not None else get_config().get_bool("reaper", "greedy")
    if is_greedy:
        return None
    min_free = session.scalar(select(RSELimit.value).where(RSELimit.rse_id == rse_id, RSELimit.name == "MinFreeSpace"))
    free = session.scalar(select(RSEUsage.free).where(RSEUsage.rse_id == rse_id, RSEUsage.source == STORAGE_SOURCE))
    if min_free is None or free is None:
        return 0
    return max(0, min_free - free)


def _candidates(rse_id: str, obsolete_only: bool):  # type: ignore[no-untyped-def]
    now = utcnow()
    source_of_transfer = exists().where(
        Source.scope == Replica.scope,
        Source.name == Replica.name,
        Source.rse_id == Replica.rse_id,
        Request.id == Source.request_id,
        Request.state.in_(ACTIVE_TRANSFERS),
    )
    query = select(Replica.scope, Replica.name, Replica.rse_id, Replica.bytes, Replica.state).where(
        Replica.rse_id == rse_id,
        Replica.lock_cnt == 0,
        Replica.tombstone.is_not(None),
        Replica.tombstone == OBSOLETE if obsolete_only else Replica.tombstone < now,
        Replica.state.in_(REAPABLE),
        claim.is_free(Replica),
        ~source_of_transfer,
    )
    return query.order_by(Replica.tombstone, Replica.accessed_at, Replica.created_at, Replica.name)


def claim_for_deletion(
    session: Session, rse_id: str, worker: str, needed: int | None, limit: int, lease_seconds: int
) -> list[dict[str, Any]]:
    """Lease (and mark BEING_DELETED) what to delete on one RSE now, least recently used first.

    ``needed`` is from :func:`bytes_to_free`: candidates are taken until their bytes reach it
    (UNAVAILABLE replicas free nothing, so they don't count).
    """
    query = _candidates(rse_id, obsolete_only=needed == 0).limit(limit)
    if is_postgresql(session):
        query = query.with_for_update(of=Replica, skip_locked=True)
    chosen: list[claim.Key] = []
    total = 0
    for scope, name, rid, size, state in session.execute(query):
        if needed is not None and needed > 0 and total >= needed:
            break
        chosen.append((scope, name, rid))
        if state != ReplicaState.UNAVAILABLE:
            total += size or 0
    won = claim.claim_keys(session, Replica, worker, chosen, lease_seconds)
    for start in range(0, len(won), claim.CHUNK):
        session.execute(
            update(Replica)
            .where(claim.key_in(Replica, won[start : start + claim.CHUNK]))
            .values(state=ReplicaState.BEING_DELETED)
            .execution_options(synchronize_session=False)
        )
    rows = session.execute(
        select(Replica.scope, Replica.name, Replica.rse_id, Replica.bytes, Replica.path, Replica.delete_failures)
        .where(Replica.rse_id == rse_id, Replica.claimed_by == worker, Replica.state == ReplicaState.BEING_DELETED)
    )
    wanted = set(won)
    return [dict(row._mapping) for row in rows if (row.scope, row.name, row.rse_id) in wanted]


def deletion_failed(session: Session, worker: str, key: claim.Key, error: str, backoff_seconds: int) -> None:
    """Keep the row after a failed physical deletion, count the failure and retry after a back-off."""
    session.execute(
        update(Replica)
        .where(claim.key_in(Replica, [key]), Replica.claimed_by == worker)
        .values(delete_failures=Replica.delete_failures + 1)
        .execution_options(synchronize_session=False)
    )
    claim.release(session, Replica, worker, [key], hold_seconds=backoff_seconds)
    add_messages(session, "deletion-failed", [{"scope": key[0], "name": key[1], "rse_id": key[2], "reason": error[:1000]}])


def forget_replicas(
    session: Session, worker: str, rse_id: str, keys: Sequence[DIDKey], lease_seconds: int
) -> int:
    """Drop the catalogue rows of replicas deleted from storage; returns how many went.

    Only rows this worker still holds go.  RSE usage follows (the ``rucio`` counter via
    abacus, the ``storage`` free space at once), and a file whose last replica went is removed.
    """
    held = claim.confirm(session, Replica, worker, [(s, n, rse_id) for s, n in keys], lease_seconds)
    if not held:
        return 0
    sizes = {
        (s, n): b
        for s, n, b in session.execute(
            select(Replica.scope, Replica.name, Replica.bytes).where(claim.key_in(Replica, held))
        )
    }
    session.execute(
        delete(Replica).where(claim.key_in(Replica, held)).execution_options(synchronize_session=False)
    )
    freed = sum(size or 0 for size in sizes.values())
    record_rse_delta(session, rse_id, -len(held), -freed)
    session.execute(
        update(RSEUsage)
        .where(RSEUsage.rse_id == rse_id, RSEUsage.source == STORAGE_SOURCE)
        .values(free=RSEUsage.free + freed, used=RSEUsage.used - freed)
    )
    add_messages(session, "deletion-done", [{"scope": s, "name": n, "rse_id": rse_id, "bytes": b} for (s, n), b in sizes.items()])
    _remove_orphan_files(session, list(sizes))
    return len(held)


def _remove_orphan_files(session: Session, keys: list[DIDKey]) -> None:
    """Remove file DIDs left without replicas, unless locked, published, or attached under a rule."""
    if not keys:
        return
    orphans = session.execute(
        select(DataIdentifier.scope, DataIdentifier.name).where(
            tuple_(DataIdentifier.scope, DataIdentifier.name).in_(keys),
            ~exists().where(Replica.scope == DataIdentifier.scope, Replica.name == DataIdentifier.name),
            ~exists().where(Lock.scope == DataIdentifier.scope, Lock.name == DataIdentifier.name),
            ~exists().where(Share.scope == DataIdentifier.scope, Share.name == DataIdentifier.name),
        )
    ).tuples().all()
    for scope, name in orphans:
        parents = [(p["scope"], p["name"]) for p in list_all_parents(session, scope, name)]
        if parents and session.scalar(
            select(Rule.id).where(tuple_(Rule.scope, Rule.name).in_(parents), Rule.state != RuleState.SUSPENDED).limit(1)
        ):
            continue  # rules still need this file: it stays (and can be recovered)
        try:
            for parent_scope, parent_name in _direct_parents(session, scope, name):
                detach(session, parent_scope, parent_name, [{"scope": scope, "name": name}])
        except UnsupportedOperation:
            continue  # attached to a monotonic collection: the name must stay
        session.execute(delete(DataIdentifier).where(DataIdentifier.scope == scope, DataIdentifier.name == name))


def _direct_parents(session: Session, scope: str, name: str) -> list[DIDKey]:
    return list(
        session.execute(
            select(Content.scope, Content.name).where(and_(Content.child_scope == scope, Content.child_name == name))
        ).tuples()
    )

