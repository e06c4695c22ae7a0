"""What a replica's change of state means for the locks that hold it, as Rucio does it.

A client (``rucio upload``, ``PUT /replicas``) or an operator (``POST /replicas/bad``) sets
replica states directly, outside the transfer flow that :mod:`datamgmt.core.request` drives.
Rules must follow, or a rule on an uploaded file stays REPLICATING for ever:

- a replica becoming AVAILABLE turns its REPLICATING and STUCK locks OK (Rucio's
  ``successful_transfer``): the data the lock waited for is there;
- a replica becoming UNAVAILABLE or BAD turns its OK and REPLICATING locks STUCK, with the
  reason as the rule's error (Rucio's ``failed_transfer``), so the necromancer (BAD) or the
  judge-repairer re-creates it from another copy or reports it lost;
- a replica declared BAD (:func:`declare`) is recorded in ``bad_replicas``
  (:mod:`datamgmt.core.bad_replica`), and the declaration closes RECOVERED when the replica
  is AVAILABLE again.

A BEING_DELETED replica is the reaper's: its file may already be gone, so no client may
declare it AVAILABLE (which would leave an OK lock on a missing file).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from datamgmt.core import bad_replica
from datamgmt.core.db.constants import BadFilesStatus, LockState, ReplicaState
from datamgmt.core.db.models import Replica, Rule, Source
from datamgmt.core.db.types import utcnow
from datamgmt.core.keys import DIDKey, chunks, keys_in
from datamgmt.core.lock_state import add_to_counters
from datamgmt.core.replica import update_replica_states
from datamgmt.core.request import move_locks
from datamgmt.core.rse import get_rse_id
from datamgmt.exceptions import InputValidationError

#: Replica states whose locks can no longer be satisfied where they are.
LOST = (ReplicaState.UNAVAILABLE, ReplicaState.BAD)


def set_replica_states(session: Session, rse: str, updates: Sequence[dict[str, Any]]) -> None:
    """Set replica states on one RSE (each update: scope, name, state) and move their locks."""
    rse_id = get_rse_id(session, rse)
    by_state: dict[ReplicaState, list[DIDKey]] = defaultdict(list)
    for item in updates:
        state = ReplicaState.parse(item.get("state", ""))
        by_state[state].append((str(item.get("scope")), str(item.get("name"))))
    update_replica_states(session, rse, updates)
    available = by_state.get(ReplicaState.AVAILABLE, [])
    _follow(session, rse, rse_id, available, ReplicaState.AVAILABLE)
    bad_replica.resolve(
        session, [(s, n, rse_id) for s, n in available], BadFilesStatus.BAD, BadFilesStatus.RECOVERED
    )
    for state in LOST:
        _follow(session, rse, rse_id, by_state.get(state, []), state)


def declare(
    session: Session,
    rse: str,
    keys: Sequence[DIDKey],
    status: BadFilesStatus,
    reason: str | None,
    account: str,
    *,
    force: bool = False,
    expires_at: datetime | None = None,
) -> list[str]:
    """Declare replicas on one RSE BAD, SUSPICIOUS or TEMPORARY_UNAVAILABLE, as Rucio does;
    returns the ones not declared, each with why (``scope:name Unknown replica`` or
    ``Already declared``), which Rucio reports instead of failing the whole call.

    BAD sets the replica BAD, its locks go STUCK with the reason as the rule's error, the
    sources of queued transfers that would read it go, and the necromancer takes over.  A
    replica with an open BAD declaration is not declared again unless ``force`` (the replica is
    then set BAD again, with no second row).  A replica being copied or deleted by the reaper is
    not declared (:func:`_set_bad`).
    SUSPICIOUS only records the report.
    TEMPORARY_UNAVAILABLE takes an AVAILABLE replica out of reads until ``expires_at``.
    """
    if status == BadFilesStatus.TEMPORARY_UNAVAILABLE:
        if expires_at is None:
            raise InputValidationError("a TEMPORARY_UNAVAILABLE declaration needs expires_at")
        if expires_at > utcnow() + bad_replica.LONGEST_UNAVAILABILITY:
            raise InputValidationError("a TEMPORARY_UNAVAILABLE declaration may last 30 days at most")
    elif expires_at is not None:
        raise InputValidationError(f"a {status.name} declaration has no expires_at")
    rse_id = get_rse_id(session, rse)
    wanted = list(dict.fromkeys(keys))
    found = bad_replica.existing(session, rse_id, wanted)
    not_declared = [f"{scope}:{name} Unknown replica" for scope, name in wanted if (scope, name) not in found]
    if status == BadFilesStatus.BAD:
        fresh = [key for key in wanted if key in found and not found[key][1]]
        again = [key for key in wanted if key in found and found[key][1]]
        if not force:
            not_declared += [f"{scope}:{name} Already declared" for scope, name in again]
            again = []
        bad = _set_bad(session, rse, rse_id, fresh + again, reason)
        not_declared += [f"{s}:{n} Being copied or deleted" for s, n in fresh + again if (s, n) not in bad]
        bad_replica.record(
            session, rse_id, [key for key in fresh if key in bad], found, status, reason, account
        )
        return not_declared
    present = [key for key in wanted if key in found]
    bad_replica.record(session, rse_id, present, found, status, reason, account, expires_at)
    if status == BadFilesStatus.TEMPORARY_UNAVAILABLE:
        bad_replica.set_temporarily_unavailable(session, rse_id, present)
    return not_declared


def _set_bad(
    session: Session, rse: str, rse_id: str, keys: Sequence[DIDKey], reason: str | None
) -> set[DIDKey]:
    """Replicas BAD, unusable as sources, their locks STUCK; returns those set BAD.

    A replica being copied (its transfer would turn the locks OK on a BAD replica) or deleted
    by the reaper keeps its state.  The update itself checks (a compare and set): a look before
    it let a declaration that read the replica AVAILABLE write BAD over the reaper's
    BEING_DELETED, and the reaper then kept the row of the file it deleted."""
    bad: set[DIDKey] = set()
    for part in chunks(list(keys)):
        bad.update(
            session.execute(
                update(Replica)
                .where(
                    Replica.rse_id == rse_id,
                    keys_in((Replica.scope, Replica.name), part),
                    Replica.state.notin_([ReplicaState.COPYING, ReplicaState.BEING_DELETED]),
                )
                .values(state=ReplicaState.BAD)
                .returning(Replica.scope, Replica.name)
                .execution_options(synchronize_session=False)
            ).tuples()
        )
    for part in chunks(sorted(bad)):
        session.execute(
            delete(Source)
            .where(Source.rse_id == rse_id, keys_in((Source.scope, Source.name), part))
            .execution_options(synchronize_session=False)
        )
    _follow(session, rse, rse_id, sorted(bad), ReplicaState.BAD, reason or "")
    return bad


def _follow(
    session: Session, rse: str, rse_id: str, keys: Sequence[DIDKey], state: ReplicaState, reason: str = ""
) -> None:
    """Move the locks on ``keys`` (replicas now in ``state``) and settle their rules."""
    if not keys:
        return
    if state == ReplicaState.AVAILABLE:
        moves = {LockState.REPLICATING: LockState.OK, LockState.STUCK: LockState.OK}
    else:
        moves = {LockState.OK: LockState.STUCK, LockState.REPLICATING: LockState.STUCK}
    deltas: dict[str, Counter[LockState]] = defaultdict(Counter)
    replicas = [(scope, name, rse_id) for scope, name in dict.fromkeys(keys)]
    for old, new in moves.items():
        move_locks(session, replicas, old, new, deltas)
    if state != ReplicaState.AVAILABLE and deltas:
        error = f"replica {state.name} on {rse}" + (f": {reason}" if reason else "")
        for part in chunks(list(deltas)):
            session.execute(
                update(Rule)
                .where(Rule.id.in_(part), Rule.error.is_(None))
                .values(error=error[:255])
                .execution_options(synchronize_session=False)
            )
    add_to_counters(session, deltas)
