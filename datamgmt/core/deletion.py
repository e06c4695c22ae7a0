"""The reaper's catalogue side: what may be deleted on an RSE, how much, and the bookkeeping after.

A replica may go when nothing holds it (``lock_cnt = 0``), its tombstone has passed, and it
is neither the source nor the destination of a QUEUED or SUBMITTED transfer (a rule removed
mid-transfer leaves its replica UNAVAILABLE and OBSOLETE: it goes once the copy has ended).  How much goes depends on the RSE:
everything eligible when it is greedy (attribute ``greedyDeletion`` or ``[reaper] greedy``);
otherwise just enough to bring free space back up to the ``MinFreeSpace`` limit, least
recently used first (the tombstone of an unlocked replica is its last access); with no
shortfall only replicas tombstoned OBSOLETE go.

A TAPE RSE is never cleaned for space or greedily: only OBSOLETE replicas go there, and a tape
replica becomes OBSOLETE only when the rule that held it last is removed with ``purge_replicas``
(an admin's option, and rules on tape are locked, which only an admin can override), or when it
never arrived.  So nothing deletes a tape copy a rule holds, or one a rule let go of, unless an
admin purges it explicitly.

Free space is the ``rse_usage`` row of source ``storage``, which :func:`refresh_storage_usage`
rewrites before every decision from what the storage itself reports (statvfs, a gfal2 space
query) and from the configured capacity, the ``MaxSpaceAvailable`` limit, less the
catalogue's bytes on the RSE; with both, the smaller free space counts.  With neither, the
row stays as an operator or external tool last set it.  Nothing adds to it as files are
deleted or written, so it cannot drift.

A deletion runs in three steps, so a rule that wants a replica meanwhile never ends up
with a lock on a file that is gone (Rucio's reaper and ``__create_lock_and_replica`` play
the same game with ``BEING_DELETED``, but only blocklist such RSEs at placement):

1. :func:`claim_for_deletion` only *leases* the candidates (:mod:`datamgmt.core.claim`),
   so many reaper instances share an RSE.  The replicas keep their state and a rule may
   still lock them: :mod:`datamgmt.core.lock` then takes the replica back (the lock is OK
   and the lease dropped), which is Rucio's resurrection.
2. :func:`confirm_deletion`, right before the physical delete, is the point of no return:
   one conditional UPDATE marks BEING_DELETED only the replicas this worker still holds
   that are still deletable (unlocked, reapable state, tombstone passed, no active transfer
   reads or writes them).  From then on the file may be gone, so a rule that wants it re-creates it
   by transfer (``lock.TransferQueue.decide``).  A replica whose physical path another
   replica row on the RSE also uses is confirmed with ``shared`` set: its row goes, its
   file stays.
3. The reaper deletes the file and :func:`forget_replicas` drops the row with a
   conditional DELETE that re-checks this worker's lease, BEING_DELETED and
   ``lock_cnt = 0``: a row a rule took over after step 2 stays, COPYING under its new lock.

A failed physical deletion keeps the row BEING_DELETED (:func:`deletion_failed`) for a later
retry.  On PostgreSQL, steps 2 and 3 lock the rows they change, and the lock code re-reads
its target rows under a row lock, so whichever transaction commits first, the other sees it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from datamgmt.config import get_config
from datamgmt.core import bad_replica, claim, deleted_did
from datamgmt.core.accounting import CATALOGUE_SOURCE
from datamgmt.core.db.constants import (
    OBSOLETE,
    TERMINAL_REQUESTS,
    BadFilesStatus,
    ReplicaState,
    RequestState,
    RSEType,
    RuleState,
)
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
    UpdatedRSECounter,
)
from datamgmt.core.db.session import is_postgresql
from datamgmt.core.db.types import utcnow
from datamgmt.core.did_content import detach, list_all_parents
from datamgmt.core.keys import DIDKey, chunks, keys_in
from datamgmt.core.message import add_messages
from datamgmt.core.replica import record_rse_delta
from datamgmt.core.rse import attr_value
from datamgmt.exceptions import UnsupportedOperation

#: Replica states the reaper may remove (BEING_DELETED: an earlier attempt failed or died).
REAPABLE = (ReplicaState.AVAILABLE, ReplicaState.UNAVAILABLE, ReplicaState.BAD, ReplicaState.BEING_DELETED)
#: Transfers whose sources must stay.
ACTIVE_TRANSFERS = (RequestState.QUEUED, RequestState.SUBMITTING, RequestState.SUBMITTED)
#: Usage source the reaper reads free space from, and refreshes from the storage before deciding.
STORAGE_SOURCE = "storage"
#: RSE limit giving the RSE's capacity in bytes (the placement solver reads it too).
CAPACITY_LIMIT = "MaxSpaceAvailable"


def deletable_rses(session: Session) -> list[tuple[str, str]]:
    """(id, name) of live RSEs that allow deletion."""
    return list(
        session.execute(
            select(RSE.id, RSE.rse)
            .where(RSE.deleted.is_(False), RSE.availability_delete.is_(True))
            .order_by(RSE.rse)
        ).tuples()
    )


def catalogue_bytes(session: Session, rse_id: str) -> int:
    """Bytes of the replicas on the RSE by the catalogue: abacus's counter plus the deltas it
    has not folded in yet (so a file registered a moment ago already counts)."""
    counted = session.scalar(
        select(RSEUsage.used).where(RSEUsage.rse_id == rse_id, RSEUsage.source == CATALOGUE_SOURCE)
    )
    pending = session.scalar(
        select(func.sum(UpdatedRSECounter.bytes)).where(UpdatedRSECounter.rse_id == rse_id)
    )
    return int(counted or 0) + int(pending or 0)


def refresh_storage_usage(session: Session, rse_id: str, reported: tuple[int, int] | None) -> int | None:
    """Rewrite the RSE's ``storage`` usage from ``reported`` (total, free bytes, as the storage
    said) and its ``MaxSpaceAvailable`` capacity less :func:`catalogue_bytes`; the smaller free
    space wins.  Returns the free bytes written, or None (row untouched) when neither is known."""
    options: list[tuple[int, int]] = []  # (free, used)
    if reported is not None:
        total, free = reported
        options.append((free, total - free))
    capacity = session.scalar(
        select(RSELimit.value).where(RSELimit.rse_id == rse_id, RSELimit.name == CAPACITY_LIMIT)
    )
    if capacity is not None and capacity >= 0:
        used = catalogue_bytes(session, rse_id)
        options.append((max(capacity - used, 0), used))
    if not options:
        return None
    free, used = min(options)
    # An upsert: two reaper instances may refresh an RSE that has no row yet at the same time.
    values = {"used": used, "free": free, "updated_at": utcnow()}
    dialect = postgresql if is_postgresql(session) else sqlite
    session.execute(
        dialect.insert(RSEUsage)
        .values(rse_id=rse_id, source=STORAGE_SOURCE, files=0, **values)
        .on_conflict_do_update(index_elements=[RSEUsage.rse_id, RSEUsage.source], set_=values)
    )
    return free


def bytes_to_free(session: Session, rse_id: str) -> int | None:
    """Bytes the RSE must free now; ``None`` means greedy (all eligible), 0 only OBSOLETE replicas.

    Reads the ``storage`` usage row: call :func:`refresh_storage_usage` first."""
    greedy = session.scalar(
        select(RSEAttribute.value).where(RSEAttribute.rse_id == rse_id, RSEAttribute.key == "greedyDeletion")
    )
    is_greedy = (
        attr_value(greedy) is True if greedy is not None else get_config().get_bool("reaper", "greedy")
    )
    if is_greedy:
        return None
    min_free = session.scalar(
        select(RSELimit.value).where(RSELimit.rse_id == rse_id, RSELimit.name == "MinFreeSpace")
    )
    free = session.scalar(
        select(RSEUsage.free).where(RSEUsage.rse_id == rse_id, RSEUsage.source == STORAGE_SOURCE)
    )
    if min_free is None or free is None:
        return 0
    return max(0, min_free - free)


def _read_by_active_transfer() -> ColumnElement[bool]:
    return exists().where(
        Source.scope == Replica.scope,
        Source.name == Replica.name,
        Source.rse_id == Replica.rse_id,
        Request.id == Source.request_id,
        Request.state.in_(ACTIVE_TRANSFERS),
    )


def _written_by_active_transfer() -> ColumnElement[bool]:
    """A transfer still on its way to the replica: deleting the row now would let the copy
    land afterwards on a path no row names, a dark file nothing ever deletes.  That is any
    transfer not DONE or FAILED: one the finisher holds (LOST, NO_SOURCES, SUBMISSION_FAILED,
    …) goes back to QUEUED and is sent again, and a LOST one's job may still be running."""
    return exists().where(
        Request.scope == Replica.scope,
        Request.name == Replica.name,
        Request.dest_rse_id == Replica.rse_id,
        Request.state.notin_(TERMINAL_REQUESTS),
    )


def _deletable() -> list[ColumnElement[bool]]:
    """What makes a replica deletable, checked when it is chosen and again when it is doomed."""
    return [
        Replica.lock_cnt == 0,
        Replica.tombstone.is_not(None),
        Replica.tombstone < utcnow(),
        Replica.state.in_(REAPABLE),
        ~_read_by_active_transfer(),
        ~_written_by_active_transfer(),
    ]


def _candidates(rse_id: str, obsolete_only: bool):  # type: ignore[no-untyped-def]
    query = select(Replica.scope, Replica.name, Replica.rse_id, Replica.bytes, Replica.state).where(
        Replica.rse_id == rse_id,
        *_deletable(),
        Replica.tombstone == OBSOLETE if obsolete_only else Replica.tombstone.is_not(None),
        claim.is_free(Replica),
    )
    return query.order_by(Replica.tombstone, Replica.accessed_at, Replica.created_at, Replica.name)


def claim_for_deletion(
    session: Session, rse_id: str, worker: str, needed: int | None, limit: int, lease_seconds: int
) -> list[dict[str, Any]]:
    """Lease what to delete on one RSE now, least recently used first (step 1 of the module
    docstring: the replicas are not doomed yet, a rule may still take them back).

    ``needed`` is from :func:`bytes_to_free`: candidates are taken until their bytes reach it
    (UNAVAILABLE replicas free nothing, so they don't count).
    """
    tape = session.scalar(select(RSE.rse_type).where(RSE.id == rse_id)) is RSEType.TAPE
    query = _candidates(rse_id, obsolete_only=needed == 0 or tape).limit(limit)
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
    return _rows(session, won)


def _rows(session: Session, keys: Sequence[claim.Key]) -> list[dict[str, Any]]:
    """What the reaper needs of each replica, in the order of ``keys``; ``shared`` tells that
    another replica row on the same RSE uses the same physical path."""
    other = aliased(Replica)
    shared = exists().where(
        other.rse_id == Replica.rse_id,
        other.path == Replica.path,
        or_(other.scope != Replica.scope, other.name != Replica.name),
    )
    found: dict[claim.Key, dict[str, Any]] = {}
    for part in chunks(list(keys)):
        rows = session.execute(
            select(
                Replica.scope,
                Replica.name,
                Replica.rse_id,
                Replica.bytes,
                Replica.path,
                Replica.delete_failures,
                shared.label("shared"),
            ).where(claim.key_in(Replica, part))
        )
        found.update({(row.scope, row.name, row.rse_id): dict(row._mapping) for row in rows})
    return [found[key] for key in keys if key in found]


def confirm_deletion(
    session: Session, worker: str, rse_id: str, keys: Sequence[DIDKey], lease_seconds: int
) -> list[dict[str, Any]]:
    """Doom the replicas of ``keys`` this worker leases that are still deletable (step 2 of the
    module docstring); returns them (see :func:`_rows`) and releases the others.

    One conditional UPDATE per chunk: this worker's lease, ``lock_cnt = 0``, a reapable state,
    a passed tombstone and no active transfer reading the file, all in its WHERE.  On
    PostgreSQL the rows are locked in key order first, as the lock code locks them.
    """
    wanted = [(scope, name, rse_id) for scope, name in keys]
    until = utcnow() + timedelta(seconds=lease_seconds)
    doomed: list[claim.Key] = []
    for part in chunks(wanted):
        mine = [claim.key_in(Replica, part), Replica.claimed_by == worker]
        if is_postgresql(session):
            session.execute(
                select(Replica.scope).where(*mine).order_by(Replica.scope, Replica.name).with_for_update()
            )
        doomed.extend(
            tuple(row)
            for row in session.execute(
                update(Replica)
                .where(*mine, *_deletable())
                .values(state=ReplicaState.BEING_DELETED, claimed_until=until)
                .returning(Replica.scope, Replica.name, Replica.rse_id)
                .execution_options(synchronize_session=False)
            )
        )
    taken = set(doomed)
    claim.release(session, Replica, worker, [key for key in wanted if key not in taken])
    return _rows(session, doomed)


def deletion_failed(session: Session, worker: str, key: claim.Key, error: str, backoff_seconds: int) -> None:
    """Keep the row after a failed physical deletion, count the failure and retry after a back-off."""
    session.execute(
        update(Replica)
        .where(claim.key_in(Replica, [key]), Replica.claimed_by == worker)
        .values(delete_failures=Replica.delete_failures + 1)
        .execution_options(synchronize_session=False)
    )
    claim.release(session, Replica, worker, [key], hold_seconds=backoff_seconds)
    add_messages(
        session,
        "deletion-failed",
        [{"scope": key[0], "name": key[1], "rse_id": key[2], "reason": error[:1000]}],
    )


def forget_replicas(session: Session, worker: str, rse_id: str, keys: Sequence[DIDKey]) -> int:
    """Drop the catalogue rows of replicas deleted from storage (step 3 of the module
    docstring); returns how many went.

    One conditional DELETE per chunk re-checks, with the delete itself, what
    :func:`confirm_deletion` established: this worker's lease, BEING_DELETED and
    ``lock_cnt = 0``.  A row a rule took over since stays (it is being copied back), and any
    lease still held on it is released.  RSE usage follows via abacus, and a file whose last
    replica went is removed.
    """
    wanted = [(scope, name, rse_id) for scope, name in keys]
    sizes: dict[DIDKey, int] = {}
    for part in chunks(wanted):
        gone = session.execute(
            delete(Replica)
            .where(
                claim.key_in(Replica, part),
                Replica.claimed_by == worker,
                Replica.state == ReplicaState.BEING_DELETED,
                Replica.lock_cnt == 0,
            )
            .returning(Replica.scope, Replica.name, Replica.bytes)
            .execution_options(synchronize_session=False)
        )
        sizes.update({(scope, name): size or 0 for scope, name, size in gone})
    claim.release(session, Replica, worker, [key for key in wanted if key[:2] not in sizes])
    if not sizes:
        return 0
    record_rse_delta(session, rse_id, -len(sizes), -sum(sizes.values()))
    bad_replica.resolve(
        session, [(s, n, rse_id) for s, n in sizes], BadFilesStatus.BAD, BadFilesStatus.DELETED
    )
    add_messages(
        session,
        "deletion-done",
        [{"scope": s, "name": n, "rse_id": rse_id, "bytes": b} for (s, n), b in sizes.items()],
    )
    _remove_orphan_files(session, list(sizes))
    return len(sizes)


def _remove_orphan_files(session: Session, keys: list[DIDKey]) -> None:
    """Remove file DIDs left without replicas, unless locked, published, or attached under a rule."""
    if not keys:
        return
    orphans = (
        session.execute(
            select(DataIdentifier.scope, DataIdentifier.name).where(
                keys_in((DataIdentifier.scope, DataIdentifier.name), keys),
                ~exists().where(Replica.scope == DataIdentifier.scope, Replica.name == DataIdentifier.name),
                ~exists().where(Lock.scope == DataIdentifier.scope, Lock.name == DataIdentifier.name),
                ~exists().where(Share.scope == DataIdentifier.scope, Share.name == DataIdentifier.name),
            )
        )
        .tuples()
        .all()
    )
    for scope, name in orphans:
        parents = [(p["scope"], p["name"]) for p in list_all_parents(session, scope, name)]
        if parents and session.scalar(
            select(Rule.id)
            .where(keys_in((Rule.scope, Rule.name), parents), Rule.state != RuleState.SUSPENDED)
            .limit(1)
        ):
            continue  # rules still need this file: it stays (and can be recovered)
        try:
            for parent_scope, parent_name in _direct_parents(session, scope, name):
                detach(session, parent_scope, parent_name, [{"scope": scope, "name": name}])
        except UnsupportedOperation:
            continue  # attached to a monotonic collection: the name must stay
        this_file = and_(DataIdentifier.scope == scope, DataIdentifier.name == name)
        deleted_did.keep(session, this_file)
        session.execute(delete(DataIdentifier).where(this_file))


def _direct_parents(session: Session, scope: str, name: str) -> list[DIDKey]:
    return list(
        session.execute(
            select(Content.scope, Content.name).where(
                and_(Content.child_scope == scope, Content.child_name == name)
            )
        ).tuples()
    )
