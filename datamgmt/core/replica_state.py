"""What a replica's change of state means for the locks that hold it, as Rucio does it.

A client (``rucio upload``, ``PUT /replicas``) or an operator (``POST /replicas/bad``) sets
replica states directly, outside the transfer flow that :mod:`datamgmt.core.request` drives.
Rules must follow, or a rule on an uploaded file stays REPLICATING for ever:

- a replica becoming AVAILABLE turns its REPLICATING and STUCK locks OK (Rucio's
  ``successful_transfer``): the data the lock waited for is there;
- a replica becoming UNAVAILABLE or BAD turns its OK and REPLICATING locks STUCK, with the
  reason as the rule's error (Rucio's ``failed_transfer``), so the judge-repairer re-creates
  it from another copy or reports it lost.

A BEING_DELETED replica is the reaper's: its file may already be gone, so no client may
declare it AVAILABLE (which would leave an OK lock on a missing file).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from datamgmt.core import validation
from datamgmt.core.db.constants import LockState, ReplicaState
from datamgmt.core.db.models import Replica, Rule
from datamgmt.core.did import chunks
from datamgmt.core.lock import add_to_counters
from datamgmt.core.replica import declare_bad_replicas, update_replica_states
from datamgmt.core.request import move_locks
from datamgmt.core.rse import get_rse_id
from datamgmt.exceptions import UnsupportedOperation

DIDKey = tuple[str, str]
#: Replica states whose locks can no longer be satisfied where they are.
LOST = (ReplicaState.UNAVAILABLE, ReplicaState.BAD)


def set_replica_states(session: Session, rse: str, updates: Sequence[dict[str, Any]]) -> None:
    """Set replica states on one RSE (each update: scope, name, state) and move their locks."""
    rse_id = get_rse_id(session, rse)
    by_state: dict[ReplicaState, list[DIDKey]] = defaultdict(list)
    for item in updates:
        state = ReplicaState.parse(item.get("state", ""))
        by_state[state].append((str(item.get("scope")), str(item.get("name"))))
    _refuse_reaper_replicas(session, rse_id, by_state.get(ReplicaState.AVAILABLE, []))
    update_replica_states(session, rse, updates)
    _follow(session, rse, rse_id, by_state.get(ReplicaState.AVAILABLE, []), ReplicaState.AVAILABLE)
    for state in LOST:
        _follow(session, rse, rse_id, by_state.get(state, []), state)


def declare_bad(session: Session, rse: str, keys: Sequence[DIDKey], reason: str, account: str) -> None:
    """Declare replicas BAD (see :func:`~datamgmt.core.replica.declare_bad_replicas`); their locks go STUCK."""
    declare_bad_replicas(session, rse, keys, reason, account)
    _follow(session, rse, get_rse_id(session, rse), list(keys), ReplicaState.BAD, reason)


def _refuse_reaper_replicas(session: Session, rse_id: str, keys: Sequence[DIDKey]) -> None:
    for part in chunks(list(keys)):
        taken = session.execute(
            select(Replica.scope, Replica.name).where(
                Replica.rse_id == rse_id,
                tuple_(Replica.scope, Replica.name).in_(part),
                Replica.state == ReplicaState.BEING_DELETED,
            ).limit(1)
        ).first()
        if taken is not None:
            raise UnsupportedOperation(
                f"Replica {validation.shown(':'.join(taken), 80)} is being deleted; it cannot become AVAILABLE"
            )


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
                update(Rule).where(Rule.id.in_(part), Rule.error.is_(None)).values(error=error[:255])
                .execution_options(synchronize_session=False)
            )
    add_to_counters(session, deltas)
