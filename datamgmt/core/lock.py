"""Locks: creating the (file, RSE) replicas a rule holds, and deciding each one's state.

Creating locks bumps the replicas' ``lock_cnt`` (clearing tombstones), creates missing
replicas and their transfer requests, charges quota and updates the rule's counters; the
repairer's retry of STUCK locks decides again where they stand.  Both work on whole sets:
bulk INSERTs and UPDATEs over chunked key lists, never a statement per file.  Releasing
locks, and the rule counters and states that follow, are :mod:`datamgmt.core.lock_state`;
listing dataset locks is :mod:`datamgmt.core.dataset_lock`.

Locks and the reaper (:mod:`datamgmt.core.deletion`).  The reaper first only *leases* an
unlocked replica; a lock taken then is Rucio's resurrection: the replica keeps its state,
the lock is OK, ``lock_cnt`` rises and the lease is dropped, so the reaper's confirmation
(which wants ``lock_cnt = 0`` and its own lease) fails and the file is never touched.  Once
the reaper has confirmed, the replica is BEING_DELETED and its file may already be gone, so
a lock never counts on it: the replica is re-created by transfer (COPYING, a REPLICATING
lock and a QUEUED request that may not start before the reaper's lease ends, so a late
physical delete cannot remove the new copy), or, with no source, becomes UNAVAILABLE under
a STUCK lock; the reaper's conditional catalogue delete then leaves the row alone.  To
decide on current states, the target replica rows are re-read under a row lock (PostgreSQL
``FOR UPDATE``, in key order; SQLite writers hold the database lock) right before the
decision, so a confirmation that committed after the caller loaded the replicas is seen.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from datamgmt.core import wakeup, workqueue
from datamgmt.core.db.bulk import insert_rows
from datamgmt.core.db.constants import LockState, ReplicaState, RequestState, RequestType
from datamgmt.core.db.models import Distance, Lock, Replica, Request, Rule, Source
from datamgmt.core.db.session import is_postgresql
from datamgmt.core.db.types import new_id, utcnow
from datamgmt.core.keys import DIDKey, chunks, keys_in
from datamgmt.core.lock_state import shift_counters
from datamgmt.core.pins import staging_required_rses
from datamgmt.core.quota import change_usage
from datamgmt.core.replica import record_rse_delta
from datamgmt.core.replica_path import fill_algorithm_paths
from datamgmt.core.rse_distance import UNKNOWN_DISTANCE
from datamgmt.core.staging import staging_buffers

#: Replica states that satisfy a lock at once.
IN_PLACE = (ReplicaState.AVAILABLE, ReplicaState.TEMPORARY_UNAVAILABLE)
#: Replica states that count as "data already there" when choosing RSEs.
PRESENT = (ReplicaState.AVAILABLE, ReplicaState.COPYING, ReplicaState.TEMPORARY_UNAVAILABLE)
#: A replica's primary key, as the keys :func:`_replica_keys` makes.
REPLICA_KEY = (Replica.scope, Replica.name, Replica.rse_id)


@dataclass(frozen=True)
class WantedLock:
    """One lock to create: a file (with what its replica and request need) on one RSE."""

    scope: str
    name: str
    rse_id: str
    bytes: int
    adler32: str | None
    md5: str | None


#: (scope, name) -> {rse_id: state} for every replica of the files concerned.
ReplicaMap = Mapping[DIDKey, Mapping[str, ReplicaState]]
#: (scope, name, rse_id) -> when the reaper's lease on a BEING_DELETED replica ends.
DeletionLeases = Mapping[tuple[str, str, str], datetime]
#: Replica state -> RSE -> files whose existing replicas move to that state.
ReplicaMoves = Mapping[ReplicaState, Mapping[str, list[DIDKey]]]


def load_replicas(session: Session, file_keys: Any) -> dict[DIDKey, dict[str, ReplicaState]]:
    """Every replica of the files a SELECT of (scope, name) yields, in one query."""
    keys = file_keys.subquery()
    rows = session.connection().execute(
        select(Replica.scope, Replica.name, Replica.rse_id, Replica.state).join(
            keys, (Replica.scope == keys.c.scope) & (Replica.name == keys.c.name)
        )
    )
    found: dict[DIDKey, dict[str, ReplicaState]] = defaultdict(dict)
    for scope, name, rse_id, state in rows:
        found[(scope, name)][rse_id] = state
    return found


def source_rankings(session: Session, dest_rse_ids: Iterable[str]) -> dict[tuple[str, str], int]:
    """(source, destination) -> ranking (higher is better: the negated distance)."""
    rows = session.execute(
        select(Distance.src_rse_id, Distance.dest_rse_id, Distance.distance).where(
            Distance.dest_rse_id.in_(list(set(dest_rse_ids)))
        )
    )
    return {(s, d): -(UNKNOWN_DISTANCE if dist is None else dist) for s, d, dist in rows}


def _replica_keys(keys_by_rse: Mapping[str, Iterable[DIDKey]]) -> list[tuple[str, str, str]]:
    """(scope, name, rse_id) of the replicas, ordered by RSE, then file: the order in which
    :func:`_pin_targets` locks them (a fixed order, so two rules never deadlock)."""
    ordered = sorted((rse_id, scope, name) for rse_id, keys in keys_by_rse.items() for scope, name in keys)
    return [(scope, name, rse_id) for rse_id, scope, name in ordered]


def _update_replicas(session: Session, keys_by_rse: Mapping[str, list[DIDKey]], **values: Any) -> None:
    """Set ``values`` on the replicas, whole primary keys at a time: with the RSE among the
    keys rather than a condition of its own, PostgreSQL looks each key up (see keys_in)
    instead of reading every replica of the RSE for every chunk."""
    for part in chunks(_replica_keys(keys_by_rse)):
        session.execute(
            update(Replica)
            .where(keys_in(REPLICA_KEY, part))
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def _pin_targets(
    session: Session, wanted: Sequence[WantedLock], replicas: ReplicaMap
) -> tuple[ReplicaMap, DeletionLeases]:
    """Lock the replica rows that ``wanted`` lands on and re-read them (see the module docstring).

    Returns ``replicas`` with those targets' current states (a row the reaper dropped since
    is gone from it) and, for targets being deleted, when the reaper's lease on them ends.
    """
    by_rse: dict[str, set[DIDKey]] = defaultdict(set)
    for lock in wanted:
        by_rse[lock.rse_id].add((lock.scope, lock.name))
    fresh: dict[DIDKey, Mapping[str, ReplicaState]] = dict(replicas)
    targets = {key for keys in by_rse.values() for key in keys}
    copied: dict[DIDKey, dict[str, ReplicaState]] = {key: dict(replicas.get(key, {})) for key in targets}
    for rse_id, keys in by_rse.items():
        for key in keys:
            copied[key].pop(rse_id, None)
    leases: dict[tuple[str, str, str], datetime] = {}
    for part in chunks(_replica_keys(by_rse)):
        query = (
            select(Replica.scope, Replica.name, Replica.rse_id, Replica.state, Replica.claimed_until)
            .where(keys_in(REPLICA_KEY, part))
            .order_by(Replica.rse_id, Replica.scope, Replica.name)
        )
        if is_postgresql(session):
            query = query.with_for_update()
        for scope, name, rse_id, state, until in session.connection().execute(query):
            copied[(scope, name)][rse_id] = state
            if state == ReplicaState.BEING_DELETED and until is not None:
                leases[(scope, name, rse_id)] = until
    fresh.update(copied)
    return fresh, leases


def _move_replicas(session: Session, moves: ReplicaMoves) -> None:
    """Set existing replicas to the states :meth:`TransferQueue.decide` chose; one taken over
    from the reaper leaves its hands (the lease is dropped)."""
    for state, keys_by_rse in moves.items():
        _update_replicas(session, keys_by_rse, state=state, claimed_by=None, claimed_until=None)


class TransferQueue:
    """Requests (with ranked sources) being assembled for one bulk INSERT."""

    def __init__(
        self,
        session: Session,
        rule: Rule,
        dest_rse_ids: Iterable[str],
        allowed_sources: set[str] | None,
        leases: DeletionLeases | None = None,
    ):
        self.rule = rule
        self.leases = leases or {}
        self.rankings = source_rankings(session, dest_rse_ids)
        self.allowed = allowed_sources
        self.requests: list[dict[str, Any]] = []
        self.sources: list[dict[str, Any]] = []
        self.attributes = (
            json.dumps({"source_replica_expression": rule.source_replica_expression})
            if rule.source_replica_expression
            else None
        )
        self.staging_required = staging_required_rses(session, dest_rse_ids)
        self.buffers = staging_buffers(session, dest_rse_ids)

    def sources_of(self, replicas: Mapping[str, ReplicaState], dest: str) -> list[str]:
        return [
            r
            for r, s in replicas.items()
            if s == ReplicaState.AVAILABLE and r != dest and (self.allowed is None or r in self.allowed)
        ]

    def add(
        self,
        lock: WantedLock,
        sources: Sequence[str],
        not_before: datetime | None = None,
        request_type: RequestType = RequestType.TRANSFER,
    ) -> None:
        request_id = new_id()
        self.requests.append(
            {
                "id": request_id,
                "scope": lock.scope,
                "name": lock.name,
                "dest_rse_id": lock.rse_id,
                "rule_id": self.rule.id,
                "activity": self.rule.activity,
                "bytes": lock.bytes,
                "md5": lock.md5,
                "adler32": lock.adler32,
                "account": self.rule.account,
                "priority": self.rule.priority,
                "state": RequestState.QUEUED,
                "attributes": self.attributes,
                "retry_count": 0,
                "not_before": not_before,
                "request_type": request_type,
            }
        )
        for source in sources:
            self.sources.append(
                {
                    "request_id": request_id,
                    "rse_id": source,
                    "scope": lock.scope,
                    "name": lock.name,
                    "dest_rse_id": lock.rse_id,
                    "bytes": lock.bytes,
                    "ranking": self.rankings.get((source, lock.rse_id), -UNKNOWN_DISTANCE),
                }
            )

    def decide(
        self, lock: WantedLock, present: Mapping[str, ReplicaState]
    ) -> tuple[LockState, ReplicaState | None]:
        """The state of a lock on ``lock.rse_id`` given the file's replicas, and the state its
        replica there must take (None: it stays as it is).

        A BEING_DELETED replica may already be gone from storage, so it counts as missing:
        with a source it is copied again (COPYING), by a request that starts no earlier than
        the reaper's lease ends; without one it is UNAVAILABLE under a STUCK lock.  On an RSE
        with ``staging_required`` an AVAILABLE replica gives a REPLICATING lock and a STAGEIN
        request that brings it online in place (OK once staged, as in Rucio).  On a staging area
        (:mod:`datamgmt.core.staging`), a file on a tape RSE that names it as its buffer is
        recalled into it by a STAGEIN request from those tape RSEs only.
        """
        current = present.get(lock.rse_id)
        if current == ReplicaState.AVAILABLE and lock.rse_id in self.staging_required:
            # On tape that must be staged for use: the lock waits for a STAGEIN in place.
            self.add(lock, [lock.rse_id], request_type=RequestType.STAGEIN)
            return LockState.REPLICATING, None
        if current in IN_PLACE:
            return LockState.OK, None
        if current == ReplicaState.COPYING:
            return LockState.REPLICATING, None
        sources = self.sources_of(present, lock.rse_id)
        if not sources:
            missing = current is None or current == ReplicaState.BEING_DELETED
            return LockState.STUCK, ReplicaState.UNAVAILABLE if missing else None
        recall = [source for source in sources if source in self.buffers.get(lock.rse_id, ())]
        self.add(
            lock,
            recall or sources,
            not_before=self.leases.get((lock.scope, lock.name, lock.rse_id)),
            request_type=RequestType.STAGEIN if recall else RequestType.TRANSFER,
        )
        return LockState.REPLICATING, ReplicaState.COPYING

    def write(self, session: Session) -> None:
        insert_rows(session, Request, self.requests)
        insert_rows(session, Source, self.sources)
        if self.requests:
            wakeup.notify(session, workqueue.QUEUED_REQUESTS)


def create_locks(
    session: Session,
    rule: Rule,
    wanted: Sequence[WantedLock],
    replicas: ReplicaMap,
    allowed_sources: set[str] | None = None,
) -> Counter[LockState]:
    """Create the rule's locks on ``wanted`` (none may exist yet) and all that follows.

    Per lock, as Rucio's ``__create_lock_and_replica``: an AVAILABLE (or temporarily
    unavailable) replica gives an OK lock; a COPYING one a REPLICATING lock riding on its
    transfer; otherwise, with an AVAILABLE source elsewhere (within ``allowed_sources``), a
    REPLICATING lock, the replica set or created COPYING, and a QUEUED request whose sources
    are ranked by distance; without a source, a STUCK lock on an UNAVAILABLE replica.  A
    BEING_DELETED replica counts as missing, and a replica the reaper has only leased is
    taken back (see the module docstring).
    Returns the locks created by state; the rule's counters are updated, its state is the
    caller's to settle (``settle_rules``).
    """
    now = utcnow()
    fresh, leases = _pin_targets(session, wanted, replicas)
    transfers = TransferQueue(session, rule, {w.rse_id for w in wanted}, allowed_sources, leases)
    lock_rows: list[dict[str, Any]] = []
    new_replicas: list[dict[str, Any]] = []
    locked_existing: dict[str, list[DIDKey]] = defaultdict(list)
    moves: dict[ReplicaState, dict[str, list[DIDKey]]] = defaultdict(lambda: defaultdict(list))
    states: Counter[LockState] = Counter()
    usage: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for lock in wanted:
        key = (lock.scope, lock.name)
        present = fresh.get(key, {})
        state, becomes = transfers.decide(lock, present)
        if lock.rse_id not in present:
            new_replicas.append(
                {
                    "scope": lock.scope,
                    "name": lock.name,
                    "rse_id": lock.rse_id,
                    "bytes": lock.bytes,
                    "adler32": lock.adler32,
                    "md5": lock.md5,
                    "lock_cnt": 1,
                    "tombstone": None,
                    "state": becomes,
                    "accessed_at": now,
                }
            )
        else:
            locked_existing[lock.rse_id].append(key)
            if becomes is not None:
                moves[becomes][lock.rse_id].append(key)
        states[state] += 1
        charged = usage[lock.rse_id]
        charged[0] += 1
        charged[1] += lock.bytes
        lock_rows.append(
            {
                "scope": lock.scope,
                "name": lock.name,
                "rule_id": rule.id,
                "rse_id": lock.rse_id,
                "account": rule.account,
                "bytes": lock.bytes,
                "state": state,
                "repair_cnt": 0,
            }
        )
    if not lock_rows:
        return states
    insert_rows(session, Lock, lock_rows)
    if new_replicas:
        fill_algorithm_paths(session, new_replicas)
        insert_rows(session, Replica, new_replicas)
        new_by_rse: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for row in new_replicas:
            new_by_rse[row["rse_id"]][0] += 1
            new_by_rse[row["rse_id"]][1] += row["bytes"]
        for rse_id, (files, nbytes) in new_by_rse.items():
            record_rse_delta(session, rse_id, files, nbytes)
    _update_replicas(
        session,
        locked_existing,
        lock_cnt=Replica.lock_cnt + 1,
        tombstone=None,
        claimed_by=None,
        claimed_until=None,
    )
    _move_replicas(session, moves)
    transfers.write(session)
    change_usage(session, {(rule.account, rse_id): (f, b) for rse_id, (f, b) in usage.items()})
    shift_counters(session, {rule.id: states})
    return states


def retry_stuck_locks(
    session: Session,
    rule: Rule,
    stuck: Sequence[WantedLock],
    replicas: ReplicaMap,
    allowed_sources: set[str] | None = None,
) -> int:
    """Give the rule's STUCK locks on ``stuck`` another chance where they stand: OK if the
    replica arrived meanwhile, REPLICATING with a new request if a source exists now.
    Returns how many locks left STUCK.  The caller settles the rule (``settle_rules``)."""
    if not stuck:
        return 0
    fresh, leases = _pin_targets(session, stuck, replicas)
    transfers = TransferQueue(session, rule, {w.rse_id for w in stuck}, allowed_sources, leases)
    moved: dict[LockState, dict[str, list[DIDKey]]] = {s: defaultdict(list) for s in LockState}
    replica_moves: dict[ReplicaState, dict[str, list[DIDKey]]] = defaultdict(lambda: defaultdict(list))
    for lock in stuck:
        key = (lock.scope, lock.name)
        state, becomes = transfers.decide(lock, fresh.get(key, {}))
        moved[state][lock.rse_id].append(key)
        if becomes is not None:
            replica_moves[becomes][lock.rse_id].append(key)
    _move_replicas(session, replica_moves)
    transfers.write(session)
    deltas: Counter[LockState] = Counter()
    for state in (LockState.OK, LockState.REPLICATING):
        for rse_id, keys in moved[state].items():
            for part in chunks(keys):
                session.execute(
                    update(Lock)
                    .where(
                        Lock.rule_id == rule.id,
                        Lock.rse_id == rse_id,
                        Lock.state == LockState.STUCK,
                        keys_in((Lock.scope, Lock.name), part),
                    )
                    .values(state=state, repair_cnt=Lock.repair_cnt + 1)
                )
            deltas[state] += len(keys)
            deltas[LockState.STUCK] -= len(keys)
    shift_counters(session, {rule.id: deltas})
    return sum(len(keys) for keys in moved[LockState.STUCK].values())
