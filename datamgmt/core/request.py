"""Transfer requests: what the conveyor reports back, applied to replicas, locks and rules.

Requests and their sources are created with the locks that need them (``lock.py``).  The
conveyor then reports a batch of outcomes through :func:`requests_done` and
:func:`requests_failed`; each updates the requests, their destination replicas, every lock on
those (of any rule) and those rules' counters and states in the caller's transaction, with a
fixed number of set-based statements per chunk of requests, whatever the batch size.  Both
are idempotent: every UPDATE is conditioned on the state it moves from and returns the rows it
changed, and counters, rule errors and messages follow exactly those rows, so a repeated
report changes nothing.  :func:`request_done` and :func:`request_failed` do the same for one
request.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Row,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from datamgmt.core import bad_replica
from datamgmt.core.db import listing
from datamgmt.core.db.constants import UNSENT, BadFilesStatus, LockState, ReplicaState, RequestState
from datamgmt.core.db.models import Lock, Replica, Request, Rule, Source
from datamgmt.core.db.types import utcnow
from datamgmt.core.keys import CASE_CHUNK, ReplicaKey, chunks, keys_in
from datamgmt.core.lock_state import add_to_counters
from datamgmt.core.message import add_messages
from datamgmt.core.request_history import record_done, record_failed
from datamgmt.exceptions import RequestNotFound
from datamgmt.transfertool.base import TransferStatus

#: Longest error text kept on a rule (Rucio truncates to 245 characters).
RULE_ERROR_LENGTH = 245
#: Request states a failure report leaves alone: already applied.
SETTLED = (RequestState.QUEUED, RequestState.DONE, RequestState.FAILED)


def _get(session: Session, request_id: str) -> Request:
    row = session.get(Request, request_id) if isinstance(request_id, str) else None
    if row is None:
        raise RequestNotFound(f"Request {request_id!r} not found")
    return row


def request_dict(row: Request) -> dict[str, Any]:
    """A request with Rucio's field names."""
    return {
        "id": row.id,
        "request_type": row.request_type.name,
        "scope": row.scope,
        "name": row.name,
        "dest_rse_id": row.dest_rse_id,
        "source_rse_id": row.source_rse_id,
        "state": row.state.name,
        "rule_id": row.rule_id,
        "activity": row.activity,
        "bytes": row.bytes,
        "adler32": row.adler32,
        "md5": row.md5,
        "retry_count": row.retry_count,
        "err_msg": row.err_msg,
        "priority": row.priority,
        "account": row.account,
        "external_id": row.external_id,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "transferred_at": row.transferred_at,
        "external_state": row.external_state,
        "staging_started_at": row.staging_started_at,
        "staging_finished_at": row.staging_finished_at,
        "archive_started_at": row.archive_started_at,
        "archive_finished_at": row.archive_finished_at,
    }


def get_request(session: Session, request_id: str) -> dict[str, Any]:
    return request_dict(_get(session, request_id))


def list_sources(session: Session, request_id: str) -> list[dict[str, Any]]:
    """The candidate sources of a request, best ranking first."""
    rows = session.scalars(
        select(Source).where(Source.request_id == request_id).order_by(Source.ranking.desc(), Source.rse_id)
    )
    return [{"rse_id": s.rse_id, "ranking": s.ranking, "bytes": s.bytes, "url": s.url} for s in rows]


def _replica_key(row: Row[Any]) -> ReplicaKey:
    return (row.scope, row.name, row.dest_rse_id)


def _set_replicas(
    session: Session,
    keys: Sequence[ReplicaKey],
    from_states: tuple[ReplicaState, ...],
    to_state: ReplicaState,
) -> set[ReplicaKey]:
    """Move the replicas ``keys`` that are in ``from_states`` to ``to_state``; returns those changed."""
    changed: set[ReplicaKey] = set()
    for part in chunks(keys):
        changed.update(
            session.execute(
                update(Replica)
                .where(
                    keys_in((Replica.scope, Replica.name, Replica.rse_id), part),
                    Replica.state.in_(from_states),
                )
                .values(state=to_state)
                .returning(Replica.scope, Replica.name, Replica.rse_id)
            ).tuples()
        )
    return changed


def move_locks(
    session: Session,
    keys: Sequence[ReplicaKey],
    from_state: LockState,
    to_state: LockState,
    deltas: dict[str, Counter[LockState]],
) -> dict[ReplicaKey, list[str]]:
    """Move the locks (of any rule) on the replicas ``keys`` from ``from_state`` to ``to_state``.

    Adds the counter deltas to ``deltas`` from the rows actually changed and returns, per
    replica, the rules whose locks moved."""
    moved: dict[ReplicaKey, list[str]] = defaultdict(list)
    for part in chunks(keys):
        rows = session.execute(
            update(Lock)
            .where(keys_in((Lock.scope, Lock.name, Lock.rse_id), part), Lock.state == from_state)
            .values(state=to_state)
            .returning(Lock.scope, Lock.name, Lock.rse_id, Lock.rule_id)
        ).tuples()
        for scope, name, rse_id, rule_id in rows:
            moved[(scope, name, rse_id)].append(rule_id)
            deltas[rule_id][from_state] -= 1
            deltas[rule_id][to_state] += 1
    return moved


def _delete_sources(session: Session, request_ids: Sequence[str]) -> None:
    for part in chunks(request_ids):
        session.execute(delete(Source).where(Source.request_id.in_(part)))


def requests_done(session: Session, request_ids: Iterable[str]) -> list[str]:
    """Transfers arrived: each replica AVAILABLE (a BAD declaration on it RECOVERED), its
    REPLICATING/STUCK locks OK, the rules' counters and states (OK when nothing replicates or sticks any more, with RULE_OK), a
    ``transfer-done`` message per request.  Quota does not move: the locks were charged when
    created.  Requests already DONE, or unknown, are skipped; returns the ids applied, in the
    order given (``RETURNING`` gives them in the table's order, which PostgreSQL does not fix)."""
    session.flush()
    now = utcnow()
    ids = list(dict.fromkeys(request_ids))
    applied: list[Row[Any]] = []
    for part in chunks(ids):
        applied += session.execute(
            update(Request)
            .where(Request.id.in_(part), Request.state != RequestState.DONE)
            .values(state=RequestState.DONE, transferred_at=now)
            .returning(
                Request.id, Request.scope, Request.name, Request.dest_rse_id, Request.rule_id, Request.bytes
            )
        ).all()
    if not applied:
        return []
    position = {request_id: index for index, request_id in enumerate(ids)}
    applied.sort(key=lambda row: position[row.id])
    record_done(session, [row.id for row in applied])
    keys = list(dict.fromkeys(_replica_key(row) for row in applied))
    _set_replicas(session, keys, (ReplicaState.COPYING, ReplicaState.UNAVAILABLE), ReplicaState.AVAILABLE)
    bad_replica.resolve(session, keys, BadFilesStatus.BAD, BadFilesStatus.RECOVERED)
    _delete_sources(session, [row.id for row in applied])
    deltas: dict[str, Counter[LockState]] = defaultdict(Counter)
    for state in (LockState.REPLICATING, LockState.STUCK):
        move_locks(session, keys, state, LockState.OK, deltas)
    add_to_counters(session, deltas)
    add_messages(
        session,
        "transfer-done",
        [
            {
                "request_id": row.id,
                "scope": row.scope,
                "name": row.name,
                "dst_rse_id": row.dest_rse_id,
                "rule_id": row.rule_id,
                "bytes": row.bytes,
            }
            for row in applied
        ],
    )
    return [row.id for row in applied]


def request_done(session: Session, request_id: str) -> bool:
    """:func:`requests_done` for one request; False when it was already DONE."""
    _get(session, request_id)
    return bool(requests_done(session, [request_id]))


def requests_failed(
    session: Session, failures: Mapping[str, str], retry_limit: int, *, keep_job: Iterable[str] = ()
) -> dict[str, RequestState]:
    """Transfer attempts failed, ``failures`` giving each request's reason.

    A request with ``retry_count < retry_limit`` is QUEUED again with ``retry_count + 1`` and
    the source it used ranked below all others, so the next attempt prefers another, unless
    nobody needs it any more (:func:`_unneeded`: its rule was removed meanwhile).  The others
    are FAILED: replica UNAVAILABLE, the REPLICATING locks on it STUCK, their rules
    STUCK with the reason as error (the repairer takes over), sources dropped and a
    ``transfer-failed`` message.  A retried request forgets its job, unless it failed before
    reaching a tool (:data:`UNSENT`): then it keeps the job's id and key, since an earlier
    unanswered submission of that job may still arrive and must meet the retry as a duplicate;
    so do the requests in ``keep_job``, whose job may still run (its cancel was not confirmed).
    Those of ``keep_job`` at the retry limit are not failed at all (:func:`_held_by_their_job`).
    Requests already QUEUED, DONE or FAILED (or unknown) are skipped: FAILED too, because a stale report must not make UNAVAILABLE a replica that a
    newer request of the repairer is copying.  Returns the new state of each request applied.
    """
    session.flush()
    keep = set(keep_job)
    pending = Request.state.notin_(SETTLED)
    held = _held_by_their_job(session, keep, retry_limit, pending)
    reasons = {
        request_id: (reason or "")[:4000] for request_id, reason in failures.items() if request_id not in held
    }
    retried: dict[str, str | None] = {}
    failed: dict[str, Row[Any]] = {}
    record_failed(session, reasons, pending)
    for part in chunks(list(reasons), CASE_CHUNK):
        err_msg = case({request_id: reasons[request_id] for request_id in part}, value=Request.id)
        retried.update(
            session.execute(
                update(Request)
                .where(Request.id.in_(part), pending, Request.retry_count < retry_limit, ~_unneeded(keep))
                .values(
                    err_msg=err_msg,
                    retry_count=Request.retry_count + 1,
                    state=RequestState.QUEUED,
                    external_id=_keep_job(Request.external_id, keep.intersection(part)),
                    external_key=_keep_job(Request.external_key, keep.intersection(part)),
                    external_host=None,
                    submitted_at=None,
                    external_state=None,
                    staging_started_at=None,
                    staging_finished_at=None,
                    archive_started_at=None,
                    archive_finished_at=None,
                )
                .returning(Request.id, Request.source_rse_id)
            )
            .tuples()
            .all()
        )
        failed.update(
            (row.id, row)
            for row in session.execute(
                update(Request)
                .where(
                    Request.id.in_(part), pending, or_(Request.retry_count >= retry_limit, _unneeded(keep))
                )
                .values(err_msg=err_msg, state=RequestState.FAILED)
                .returning(Request.id, Request.scope, Request.name, Request.dest_rse_id, Request.rule_id)
            )
        )
    _rank_last(
        session, [(request_id, rse_id) for request_id, rse_id in retried.items() if rse_id is not None]
    )
    _give_up(session, [failed[request_id] for request_id in reasons if request_id in failed], reasons)
    return {**dict.fromkeys(retried, RequestState.QUEUED), **dict.fromkeys(failed, RequestState.FAILED)}


def record_external_states(session: Session, reports: Sequence[TransferStatus]) -> None:
    """Remember what the tool reports of transfers (FTS's STAGING, ACTIVE, ARCHIVING, FINISHED
    ...), when it staged their source and when it archived them, so a request shows its phase and
    its time on tape apart from the copy: one executemany, touching only requests still SUBMITTED under the reported
    external id (a stale report changes nothing).  Call it before applying outcomes."""
    rows = [
        {
            "b_id": s.request_id,
            "b_external_id": s.external_id,
            "b_state": (s.external_state or "")[:32] or None,
            "b_start": s.staging_started,
            "b_end": s.staging_finished,
            "b_archive_start": s.archive_started,
            "b_archive_end": s.archive_finished,
        }
        for s in reports
        if s.request_id is not None
    ]
    if not rows:
        return
    table = Request.__table__
    statement = (
        update(table)
        .where(
            table.c.id == bindparam("b_id"),
            table.c.external_id == bindparam("b_external_id"),
            table.c.state == RequestState.SUBMITTED,
        )
        .values(
            external_state=bindparam("b_state"),
            staging_started_at=func.coalesce(
                bindparam("b_start", type_=DateTime), table.c.staging_started_at
            ),
            staging_finished_at=func.coalesce(
                bindparam("b_end", type_=DateTime), table.c.staging_finished_at
            ),
            archive_started_at=func.coalesce(
                bindparam("b_archive_start", type_=DateTime), table.c.archive_started_at
            ),
            archive_finished_at=func.coalesce(
                bindparam("b_archive_end", type_=DateTime), table.c.archive_finished_at
            ),
        )
    )
    session.connection().execute(statement, rows)


def _held_by_their_job(session: Session, keep: set[str], retry_limit: int, pending: Any) -> set[str]:
    """The requests of ``keep`` (their job's cancel was not confirmed) at the retry limit.

    They stay as they are, in flight under their job, until the tool answers for it: FAILED,
    a request no longer protects its replica row, so once its rule was removed the reaper could
    remove the row, and the job's late copy would land where no row names it, a dark file.
    """
    if not keep:
        return set()
    held: set[str] = set()
    for part in chunks(sorted(keep)):
        held.update(
            session.scalars(
                select(Request.id).where(Request.id.in_(part), pending, Request.retry_count >= retry_limit)
            )
        )
    return held


def _keeps_job(keep: set[str]) -> ColumnElement[bool]:
    """Whether a retried request keeps its job: it was never sent, or it is in ``keep``."""
    return or_(Request.state.in_(UNSENT), Request.id.in_(sorted(keep))) if keep else Request.state.in_(UNSENT)


def _keep_job(column: Any, keep: set[str]) -> Any:
    """``column`` where the request keeps its job, else NULL."""
    return case((_keeps_job(keep), column), else_=None)


def _unneeded(keep: set[str]) -> ColumnElement[bool]:
    """A request nobody needs any more: its rule is gone, no lock waits for its copy, and no job
    of its own could still arrive (a retry would queue it outside any job).  Sent again, its
    copy would land on a replica nobody wants; it fails instead, and the reaper takes the row."""
    locked = exists().where(
        Lock.scope == Request.scope, Lock.name == Request.name, Lock.rse_id == Request.dest_rse_id
    )
    return and_(
        Request.rule_id.is_not(None),
        ~exists().where(Rule.id == Request.rule_id),
        ~locked,
        or_(Request.external_id.is_(None), ~_keeps_job(keep)),
    )


def request_failed(session: Session, request_id: str, reason: str, retry_limit: int) -> RequestState:
    """:func:`requests_failed` for one request; returns its state (unchanged when skipped)."""
    state = _get(session, request_id).state
    return requests_failed(session, {request_id: reason}, retry_limit).get(request_id, state)


def _rank_last(session: Session, used: Sequence[tuple[str, str]]) -> None:
    """Rank each (request, source RSE) pair below every other source of its request."""
    other = aliased(Source)
    lowest = (
        select(func.coalesce(func.min(other.ranking), 0) - 1)
        .where(other.request_id == Source.request_id)
        .scalar_subquery()
    )
    for part in chunks(used):
        session.execute(
            update(Source)
            .where(keys_in((Source.request_id, Source.rse_id), part, wide=0))
            .values(ranking=lowest)
        )


def _give_up(session: Session, rows: Sequence[Row[Any]], reasons: Mapping[str, str]) -> None:
    """What follows FAILED requests (``rows`` in report order).  When several concern one
    replica, the first takes its change and message, as one-by-one reports would."""
    if not rows:
        return
    keys = list(dict.fromkeys(_replica_key(row) for row in rows))
    replicas = _set_replicas(session, keys, (ReplicaState.COPYING,), ReplicaState.UNAVAILABLE)
    _delete_sources(session, [row.id for row in rows])
    deltas: dict[str, Counter[LockState]] = defaultdict(Counter)
    moved = move_locks(session, keys, LockState.REPLICATING, LockState.STUCK, deltas)
    errors: dict[str, str] = {}
    messages: list[dict[str, Any]] = []
    for row in rows:
        key, reason = _replica_key(row), reasons[row.id]
        rule_ids = moved.pop(key, [])
        errors.update(dict.fromkeys(rule_ids, reason[:RULE_ERROR_LENGTH]))
        if rule_ids or key in replicas:
            replicas.discard(key)
            messages.append(
                {
                    "request_id": row.id,
                    "scope": row.scope,
                    "name": row.name,
                    "dst_rse_id": row.dest_rse_id,
                    "rule_id": row.rule_id,
                    "reason": reason,
                }
            )
    rule_ids = list(errors)
    for part in chunks(rule_ids, CASE_CHUNK):
        session.execute(
            update(Rule)
            .where(Rule.id.in_(part))
            .values(error=case({rule_id: errors[rule_id] for rule_id in part}, value=Rule.id))
        )
    add_to_counters(session, deltas)
    add_messages(session, "transfer-failed", messages)


def request_by_did(session: Session, scope: str, name: str, dest_rse_id: str) -> dict[str, Any]:
    """The newest transfer request of a file to an RSE (Rucio's ``get_request_by_did``)."""
    row = session.scalars(
        select(Request)
        .where(Request.scope == scope, Request.name == name, Request.dest_rse_id == dest_rse_id)
        .order_by(Request.created_at.desc())
        .limit(1)
    ).first()
    if row is None:
        raise RequestNotFound(f"No request found for DID {scope}:{name} at this RSE")
    return request_dict(row)


def list_requests(
    session: Session,
    source_rse_ids: Sequence[str],
    dest_rse_ids: Sequence[str],
    states: Sequence[RequestState],
) -> Iterator[dict[str, Any]]:
    """Requests between these RSEs in these states, streamed (Rucio's ``list_requests``)."""
    query = (
        select(Request)
        .where(
            Request.source_rse_id.in_(source_rse_ids),
            Request.dest_rse_id.in_(dest_rse_ids),
            Request.state.in_(states),
        )
        .order_by(Request.created_at)
    )
    for row in listing.scalars(session, query):
        yield request_dict(row)
