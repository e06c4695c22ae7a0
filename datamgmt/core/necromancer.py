"""What becomes of a BAD replica (Rucio's necromancer): copied again from a good one, or lost.

A pass takes BAD replicas of files not yet LOST (:func:`bad_replicas`) and, in one
transaction per batch (:func:`revive`):

- **another copy exists** (AVAILABLE or TEMPORARY_UNAVAILABLE elsewhere) and rules hold the bad
  one: it is re-created where it was.  The replica becomes COPYING, its locks REPLICATING (their
  rules follow from the counters), and one transfer request is queued from the AVAILABLE
  copies, ranked by distance, unless a live request for it exists already.  When that transfer
  lands the declaration closes RECOVERED (:func:`datamgmt.core.request.requests_done`); if it
  fails for good, its locks go STUCK and the judge-repairer takes over as for any transfer;
- **another copy exists but no rule holds the bad one**: nobody needs it here.  It becomes
  UNAVAILABLE with an OBSOLETE tombstone, so the reaper deletes it (declaration DELETED then);
- **no other copy**: the file is lost.  The locks on the bad replica are released (their
  rules settle without it, quota is returned, queued transfers to it are cancelled), the
  replica becomes UNAVAILABLE and OBSOLETE, the file's availability LOST, the declaration
  LOST, and the file is detached from its datasets with one ``LOST`` message per dataset, as
  Rucio does, so a dataset no longer promises data that does not exist.

Each decision starts with a conditional UPDATE of the replica from BAD that returns the rows
it changed, and only those rows are acted on: a second necromancer, or the judge-repairer
re-copying the same replica from its STUCK lock, finds it no longer BAD and leaves it alone.

Whether rules hold a bad replica is read from its locks once the replica is taken (its row
locked until the batch commits), in the order the judge-repairer takes them (replica, then
locks), so the two never wait on each other.  A rule whose removal committed before the replica
was taken has left no lock: such a replica goes to the reaper instead of being copied for
nobody (before, the batch failed there on a rule it could not find).  A removal that is
still under way holds its locks and waits for the replica: the batch then meets its locks, and
PostgreSQL ends one of the two as a deadlock, rolled back whole and tried again.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from datamgmt.core import bad_replica
from datamgmt.core.db.constants import (
    OBSOLETE,
    BadFilesStatus,
    DIDAvailability,
    LockState,
    ReplicaState,
    RequestState,
)
from datamgmt.core.db.models import Content, DataIdentifier, Lock, Replica, Request, Rule
from datamgmt.core.did_content import detach
from datamgmt.core.keys import ReplicaKey, chunks, keys_in
from datamgmt.core.lock import TransferQueue, WantedLock
from datamgmt.core.lock_state import add_to_counters, release_locks
from datamgmt.core.message import add_messages
from datamgmt.core.request import move_locks

#: Replica states of another copy that make a bad replica recoverable (Rucio's).
GOOD = (ReplicaState.AVAILABLE, ReplicaState.TEMPORARY_UNAVAILABLE)
#: Request states that still promise to bring the file.
LIVE = (RequestState.QUEUED, RequestState.SUBMITTING, RequestState.SUBMITTED)
#: The (scope, name, RSE) columns of a replica, and of the request that brings one.
REPLICA_KEY = (Replica.scope, Replica.name, Replica.rse_id)
REQUEST_KEY = (Request.scope, Request.name, Request.dest_rse_id)


def bad_replicas(session: Session, limit: int) -> list[ReplicaKey]:
    """BAD replicas whose file is not LOST yet, oldest declaration first."""
    query = (
        select(Replica.scope, Replica.name, Replica.rse_id)
        .join(DataIdentifier, (DataIdentifier.scope == Replica.scope) & (DataIdentifier.name == Replica.name))
        .where(Replica.state == ReplicaState.BAD, DataIdentifier.availability != DIDAvailability.LOST)
        .order_by(Replica.updated_at, Replica.scope, Replica.name)
        .limit(limit)
    )
    return [tuple(row) for row in session.execute(query).tuples()]  # type: ignore[misc]


def revive(session: Session, keys: Sequence[ReplicaKey]) -> dict[str, int]:
    """Recover or bury the BAD replicas ``keys`` (see the module docstring); counts by outcome."""
    good = _good_copies(session, keys)
    recoverable = [key for key in keys if good.get(key[:2], set()) - {key[2]}]
    lost = sorted(set(keys) - set(recoverable))
    held = _keys_where(session, REPLICA_KEY, recoverable, Replica.lock_cnt > 0)
    recovering, unheld = _recover(session, [key for key in recoverable if key in held])
    return {
        "recovering": recovering,
        "obsolete": unheld + _make_obsolete(session, [key for key in recoverable if key not in held]),
        "lost": _bury(session, lost),
    }


def _holders(session: Session, keys: Sequence[ReplicaKey]) -> dict[ReplicaKey, list[str]]:
    """The rules locking each of the replicas ``keys`` (those nobody locks are left out)."""
    found: dict[ReplicaKey, list[str]] = defaultdict(list)
    for part in chunks(list(keys)):
        query = select(Lock.scope, Lock.name, Lock.rse_id, Lock.rule_id).where(
            keys_in((Lock.scope, Lock.name, Lock.rse_id), part)
        )
        for scope, name, rse_id, rule_id in session.execute(query).tuples():
            found[(scope, name, rse_id)].append(rule_id)
    return found


def _good_copies(session: Session, keys: Sequence[ReplicaKey]) -> dict[tuple[str, str], set[str]]:
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    for part in chunks(sorted({key[:2] for key in keys})):
        rows = session.execute(
            select(Replica.scope, Replica.name, Replica.rse_id).where(
                keys_in((Replica.scope, Replica.name), part), Replica.state.in_(GOOD)
            )
        )
        for scope, name, rse_id in rows:
            found[(scope, name)].add(rse_id)
    return found


def _keys_where(
    session: Session, columns: tuple[Any, Any, Any], keys: Sequence[ReplicaKey], *conditions: Any
) -> set[ReplicaKey]:
    """Those of ``keys`` (matched on ``columns``: scope, name, RSE) whose rows meet ``conditions``."""
    found: set[ReplicaKey] = set()
    for part in chunks(list(keys)):
        found.update(session.execute(select(*columns).where(keys_in(columns, part), *conditions)).tuples())
    return found


def _take(session: Session, keys: Sequence[ReplicaKey], *conditions: Any, **values: Any) -> list[ReplicaKey]:
    """Move the replicas of ``keys`` that are still BAD (and meet ``conditions``); returns those
    moved (see the module docstring)."""
    return _set_state(session, keys, ReplicaState.BAD, *conditions, **values)


def _set_state(
    session: Session, keys: Sequence[ReplicaKey], current: ReplicaState, *conditions: Any, **values: Any
) -> list[ReplicaKey]:
    """Set ``values`` on the replicas of ``keys`` still in state ``current`` (and meeting
    ``conditions``); returns those changed."""
    changed: list[ReplicaKey] = []
    for part in chunks(list(keys)):
        changed += (
            session.execute(
                update(Replica)
                .where(keys_in(REPLICA_KEY, part), Replica.state == current, *conditions)
                .values(**values)
                .returning(Replica.scope, Replica.name, Replica.rse_id)
            )
            .tuples()
            .all()
        )
    return changed


def _recover(session: Session, keys: Sequence[ReplicaKey]) -> tuple[int, int]:
    """Copy the replicas ``keys`` again, each for one of the rules holding it; a replica whose
    last lock went before it was taken goes to the reaper (see the module docstring).  Returns
    how many are copied again and how many went to the reaper."""
    taken = _take(session, keys, state=ReplicaState.COPYING)
    holders = _holders(session, taken)
    unheld = [key for key in taken if key not in holders]
    _set_state(session, unheld, ReplicaState.COPYING, state=ReplicaState.UNAVAILABLE, tombstone=OBSOLETE)
    held = [key for key in taken if key in holders]
    if not held:
        return 0, len(unheld)
    deltas: dict[str, Counter[LockState]] = defaultdict(Counter)
    for state in (LockState.OK, LockState.STUCK):
        move_locks(session, held, state, LockState.REPLICATING, deltas)
    live = _keys_where(session, REQUEST_KEY, held, Request.state.in_(LIVE))
    _queue_transfers(session, [key for key in held if key not in live], holders)
    add_to_counters(session, deltas)
    return len(held), len(unheld)


def _queue_transfers(
    session: Session, keys: Sequence[ReplicaKey], holders: dict[ReplicaKey, list[str]]
) -> None:
    """One request per replica, on behalf of one of the rules holding it (its account and activity)."""
    if not keys:
        return
    by_rule: dict[str, list[ReplicaKey]] = defaultdict(list)
    for key in keys:
        by_rule[min(holders[key])].append(key)
    sources = _good_copies(session, keys)
    files = _file_rows(session, keys)
    rules = {rule.id: rule for rule in session.scalars(select(Rule).where(Rule.id.in_(list(by_rule))))}
    for rule_id, rule_keys in by_rule.items():
        queue = TransferQueue(session, rules[rule_id], {key[2] for key in rule_keys}, None)
        for scope, name, rse_id in rule_keys:
            size, adler32, md5 = files[(scope, name)]
            available = sorted(sources[(scope, name)] - {rse_id})
            queue.add(WantedLock(scope, name, rse_id, size, adler32, md5), available)
        queue.write(session)


def _file_rows(
    session: Session, keys: Sequence[ReplicaKey]
) -> dict[tuple[str, str], tuple[int, str | None, str | None]]:
    rows: dict[tuple[str, str], tuple[int, str | None, str | None]] = {}
    for part in chunks(sorted({key[:2] for key in keys})):
        for scope, name, size, adler32, md5 in session.execute(
            select(
                DataIdentifier.scope,
                DataIdentifier.name,
                DataIdentifier.bytes,
                DataIdentifier.adler32,
                DataIdentifier.md5,
            ).where(keys_in((DataIdentifier.scope, DataIdentifier.name), part))
        ):
            rows[(scope, name)] = (size or 0, adler32, md5)
    return rows


def _make_obsolete(session: Session, keys: Sequence[ReplicaKey]) -> int:
    """Hand the replicas ``keys`` nobody locked to the reaper; one a new rule locked since
    :func:`revive` looked stays BAD for the next pass rather than be deleted under its lock."""
    return len(
        _take(session, keys, Replica.lock_cnt == 0, state=ReplicaState.UNAVAILABLE, tombstone=OBSOLETE)
    )


def _bury(session: Session, keys: Sequence[ReplicaKey]) -> int:
    taken = _take(session, keys, state=ReplicaState.UNAVAILABLE)
    if not taken:
        return 0
    rule_keys: dict[str, list[ReplicaKey]] = defaultdict(list)
    for part in chunks(taken):
        for scope, name, rse_id, rule_id in session.execute(
            select(Lock.scope, Lock.name, Lock.rse_id, Lock.rule_id).where(
                keys_in((Lock.scope, Lock.name, Lock.rse_id), part)
            )
        ):
            rule_keys[rule_id].append((scope, name, rse_id))
    for rule in session.scalars(select(Rule).where(Rule.id.in_(list(rule_keys)))).all():
        for part in chunks(rule_keys[rule.id]):
            release_locks(session, rule, [keys_in((Lock.scope, Lock.name, Lock.rse_id), part)])
    for part in chunks(taken):
        session.execute(
            update(Replica)
            .where(keys_in((Replica.scope, Replica.name, Replica.rse_id), part))
            .values(tombstone=OBSOLETE)
            .execution_options(synchronize_session=False)
        )
    files = sorted({key[:2] for key in taken})
    for part in chunks(files):
        session.execute(
            update(DataIdentifier)
            .where(keys_in((DataIdentifier.scope, DataIdentifier.name), part))
            .values(availability=DIDAvailability.LOST)
            .execution_options(synchronize_session=False)
        )
    bad_replica.resolve(session, taken, BadFilesStatus.BAD, BadFilesStatus.LOST)
    _detach_lost(session, files)
    return len(taken)


def _detach_lost(session: Session, files: Sequence[tuple[str, str]]) -> None:
    """Take lost files out of the datasets holding them (one detach per dataset; a monotonic
    dataset keeps them, it may not shrink), one LOST message per (file, dataset)."""
    children: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    messages: list[dict[str, str]] = []
    for part in chunks(list(files)):
        rows = session.execute(
            select(
                Content.scope, Content.name, Content.child_scope, Content.child_name, DataIdentifier.monotonic
            )
            .join(
                DataIdentifier,
                (DataIdentifier.scope == Content.scope) & (DataIdentifier.name == Content.name),
            )
            .where(keys_in((Content.child_scope, Content.child_name), part))
        )
        for scope, name, child_scope, child_name, monotonic in rows:
            if not monotonic:
                children[(scope, name)].append({"scope": child_scope, "name": child_name})
            messages.append(
                {"scope": child_scope, "name": child_name, "dataset_scope": scope, "dataset_name": name}
            )
    for (scope, name), lost in sorted(children.items()):
        detach(session, scope, name, lost)
    add_messages(session, "LOST", messages)
