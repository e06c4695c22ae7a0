"""Transfer requests: what the conveyor reports back, applied to replicas, locks and rules.

Requests and their sources are created with the locks that need them (``lock.py``).  The
conveyor then calls :func:`request_done` or :func:`request_failed`; each updates the
request, the destination replica, every lock on it (of any rule) and those rules'
counters and states in the caller's transaction, with set-based statements.  Both are
idempotent: the lock updates return the rows they changed and counters move by exactly
those, so a repeated report changes nothing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from datamgmt.core.db.constants import LockState, ReplicaState, RequestState
from datamgmt.core.db.models import Lock, Replica, Request, Rule, Source
from datamgmt.core.db.types import utcnow
from datamgmt.core.lock import add_to_counters
from datamgmt.core.message import add_message
from datamgmt.exceptions import RequestNotFound

#: Longest error text kept on a rule (Rucio truncates to 245 characters).
RULE_ERROR_LENGTH = 245


def _get(session: Session, request_id: str) -> Request:
    row = session.get(Request, request_id) if isinstance(request_id, str) else None
    if row is None:
        raise RequestNotFound(f"Request {request_id!r} not found")
    return row


def request_dict(row: Request) -> dict[str, Any]:
    """A request with Rucio's field names."""
    return {
        "id": row.id, "request_type": row.request_type.name, "scope": row.scope, "name": row.name,
        "dest_rse_id": row.dest_rse_id, "source_rse_id": row.source_rse_id, "state": row.state.name,
        "rule_id": row.rule_id, "activity": row.activity, "bytes": row.bytes, "adler32": row.adler32,
        "md5": row.md5, "retry_count": row.retry_count, "err_msg": row.err_msg, "priority": row.priority,
        "account": row.account, "external_id": row.external_id, "created_at": row.created_at,
        "updated_at": row.updated_at, "transferred_at": row.transferred_at,
    }


def get_request(session: Session, request_id: str) -> dict[str, Any]:
    return request_dict(_get(session, request_id))


def list_sources(session: Session, request_id: str) -> list[dict[str, Any]]:
    """The candidate sources of a request, best ranking first."""
    rows = session.scalars(select(Source).where(Source.request_id == request_id)
                           .order_by(Source.ranking.desc(), Source.rse_id))
    return [{"rse_id": s.rse_id, "ranking": s.ranking, "bytes": s.bytes, "url": s.url} for s in rows]


def _move_locks(session: Session, request: Request, from_states: tuple[LockState, ...],
                to_state: LockState) -> dict[str, Counter[LockState]]:
    """Move the locks on the request's replica from ``from_states`` to ``to_state``;
    returns the counter deltas per rule, from the rows actually changed."""
    deltas: dict[str, Counter[LockState]] = defaultdict(Counter)
    for state in from_states:
        changed = session.execute(
            update(Lock)
            .where(Lock.scope == request.scope, Lock.name == request.name, Lock.rse_id == request.dest_rse_id,
                   Lock.state == state)
            .values(state=to_state)
            .returning(Lock.rule_id)
        ).scalars().all()
        for rule_id in changed:
            deltas[rule_id][state] -= 1
            deltas[rule_id][to_state] += 1
    return deltas


def _set_replica(session: Session, request: Request, from_states: tuple[ReplicaState, ...],
                 to_state: ReplicaState) -> int:
    return session.execute(
        update(Replica)
        .where(Replica.scope == request.scope, Replica.name == request.name, Replica.rse_id == request.dest_rse_id,
               Replica.state.in_(from_states))
        .values(state=to_state)
    ).rowcount


def request_done(session: Session, request_id: str) -> bool:
    """The transfer arrived: replica AVAILABLE, its REPLICATING/STUCK locks OK, rules' counters
    and states (OK when nothing replicates or sticks any more, with RULE_OK), a
    ``transfer-done`` message.  Returns False when the request was already DONE."""
    request = _get(session, request_id)
    if request.state == RequestState.DONE:
        return False
    request.state, request.transferred_at = RequestState.DONE, utcnow()
    session.flush()
    _set_replica(session, request, (ReplicaState.COPYING, ReplicaState.UNAVAILABLE), ReplicaState.AVAILABLE)
    session.execute(delete(Source).where(Source.request_id == request.id))
    add_to_counters(session, _move_locks(session, request, (LockState.REPLICATING, LockState.STUCK), LockState.OK))
    add_message(session, "transfer-done", {"request_id": request.id, "scope": request.scope, "name": request.name,
                                           "dst_rse_id": request.dest_rse_id, "rule_id": request.rule_id,
                                           "bytes": request.bytes})
    return True


def request_failed(session: Session, request_id: str, reason: str, retry_limit: int) -> RequestState:
    """A transfer attempt failed.

    While ``retry_count < retry_limit`` the request is QUEUED again with ``retry_count + 1``
    and the source it used ranked below all others, so the next attempt prefers another.
    After that it is FAILED: the replica UNAVAILABLE, the REPLICATING locks on it STUCK, their
    rules STUCK with ``reason`` as error (the repairer takes over), and a ``transfer-failed``
    message.  A QUEUED or DONE request is left alone, so a repeated report is harmless.
    Returns the request's state.
    """
    request = _get(session, request_id)
    if request.state in (RequestState.QUEUED, RequestState.DONE):
        return request.state
    request.err_msg = (reason or "")[:4000]
    if request.retry_count < retry_limit:
        _rank_last(session, request)
        request.retry_count += 1
        request.state = RequestState.QUEUED
        request.external_id = request.external_host = request.submitted_at = None
        session.flush()
        return request.state
    request.state = RequestState.FAILED
    session.flush()
    replica_changed = _set_replica(session, request, (ReplicaState.COPYING,), ReplicaState.UNAVAILABLE)
    session.execute(delete(Source).where(Source.request_id == request.id))
    deltas = _move_locks(session, request, (LockState.REPLICATING,), LockState.STUCK)
    if deltas:
        session.execute(update(Rule).where(Rule.id.in_(list(deltas))).values(error=request.err_msg[:RULE_ERROR_LENGTH]))
    add_to_counters(session, deltas)
    if deltas or replica_changed:
        add_message(session, "transfer-failed", {"request_id": request.id, "scope": request.scope,
                                                 "name": request.name, "dst_rse_id": request.dest_rse_id,
                                                 "rule_id": request.rule_id, "reason": request.err_msg})
    return request.state


def _rank_last(session: Session, request: Request) -> None:
    if request.source_rse_id is None:
        return
    lowest = session.scalar(select(func.min(Source.ranking)).where(Source.request_id == request.id))
    session.execute(
        update(Source)
        .where(Source.request_id == request.id, Source.rse_id == request.source_rse_id)
        .values(ranking=(lowest or 0) - 1)
    )
