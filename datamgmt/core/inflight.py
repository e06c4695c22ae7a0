"""The conveyor's record of requests in flight: from routed to submitted, polled and finished.

Routing (:mod:`datamgmt.core.transfer`) decides what to copy; this module records what happened
to it, in the states the daemons hand each other: the submitter writes SUBMITTING (the external
ids a tool chose, before anything is sent), then SUBMITTED (what the tool confirmed) or a
failure state for the finisher; the poller claims SUBMITTED requests, matches the tool's reports
to them and gives up on overdue ones; the finisher claims what ended without a report.  Like
routing, every function is a fixed number of set-based statements per batch.  Outcomes of
transfers that ran (DONE, FAILED) are applied by :mod:`datamgmt.core.request`.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from datamgmt.core import workqueue
from datamgmt.core.db.constants import RequestState
from datamgmt.core.db.models import Request, Source
from datamgmt.core.db.rows import rowcount
from datamgmt.core.db.types import utcnow
from datamgmt.core.keys import QUEUE_CHUNK, chunks, keys_in
from datamgmt.transfertool.base import TransferState, TransferStatus


@dataclass(frozen=True)
class Submission:
    """What the submitter persists for one submitted request."""

    request_id: str
    external_id: str
    external_host: str
    transfertool: str
    source_rse_id: str
    dest_url: str
    #: The tool's key of the job (FTS: the sid its id derives from), to send it again under.
    external_key: str = ""


# --- submitter writes ----------------------------------------------------------------------------
def mark_submitting(
    session: Session, worker: str, submissions: Sequence[Submission], lease_seconds: int
) -> set[str]:
    """Record the external ids a tool chose *before* it is sent anything (state SUBMITTING).

    From here on the request is looked for under that id, never submitted blindly again: if
    the submission's answer is lost, :func:`claim_submitting` and :func:`held_by_tool` find out
    whether the job holds it.  The used sources are recorded too (so the reaper keeps them) and
    the lease is renewed for the submission itself.  Only rows this worker still holds in
    QUEUED change, so a request another worker took over after our lease ran out is not
    overwritten.  Returns the ids recorded: only those may be sent.
    """
    if not submissions:
        return set()
    table = Request.__table__
    now = utcnow()
    statement = (
        update(table)
        .where(
            table.c.id == bindparam("b_id"),
            table.c.claimed_by == worker,
            table.c.state == RequestState.QUEUED,
        )
        .values(
            state=RequestState.SUBMITTING,
            external_id=bindparam("b_external_id"),
            external_key=bindparam("b_external_key"),
            external_host=bindparam("b_external_host"),
            transfertool=bindparam("b_transfertool"),
            source_rse_id=bindparam("b_source_rse_id"),
            dest_url=bindparam("b_dest_url"),
            submitted_at=now,
            updated_at=now,
            err_msg=None,
            claimed_until=now + timedelta(seconds=lease_seconds),
        )
    )
    session.connection().execute(
        statement,
        [
            {
                "b_id": s.request_id,
                "b_external_id": s.external_id,
                "b_external_key": s.external_key or None,
                "b_external_host": s.external_host,
                "b_transfertool": s.transfertool,
                "b_source_rse_id": s.source_rse_id,
                "b_dest_url": s.dest_url,
            }
            for s in submissions
        ],
    )
    recorded: set[str] = set()
    for chunk in chunks([s.request_id for s in submissions], QUEUE_CHUNK):
        recorded.update(
            session.scalars(
                select(Request.id).where(
                    Request.id.in_(chunk),
                    Request.claimed_by == worker,
                    Request.state == RequestState.SUBMITTING,
                )
            )
        )
    _record_sources(session, [s for s in submissions if s.request_id in recorded])
    return recorded


def mark_submitted(session: Session, worker: str, external_ids: Mapping[str, str]) -> int:
    """SUBMITTING → SUBMITTED (lease released) for the requests a tool is known to hold,
    ``{request_id: external_id}``; ``submitted_at`` stays the time of the first attempt to send.
    Only rows this worker holds change.  Returns how many rows changed."""
    if not external_ids:
        return 0
    table = Request.__table__
    statement = (
        update(table)
        .where(
            table.c.id == bindparam("b_id"),
            table.c.claimed_by == worker,
            table.c.state == RequestState.SUBMITTING,
        )
        .values(
            state=RequestState.SUBMITTED,
            external_id=bindparam("b_external_id"),
            updated_at=utcnow(),
            claimed_by=None,
            claimed_until=None,
        )
    )
    result = session.connection().execute(
        statement, [{"b_id": rid, "b_external_id": eid} for rid, eid in external_ids.items()]
    )
    return result.rowcount


def _record_sources(session: Session, submissions: Sequence[Submission]) -> None:
    """Insert the ``sources`` row of each used source that has none yet (its ranking starts at 0)."""
    pairs = [(s.request_id, s.source_rse_id) for s in submissions]
    existing: set[tuple[str, str]] = set()
    for chunk in chunks(pairs, QUEUE_CHUNK):
        existing.update(
            session.execute(
                select(Source.request_id, Source.rse_id).where(
                    keys_in((Source.request_id, Source.rse_id), chunk, wide=0)
                )
            )
            .tuples()
            .all()
        )
    missing = [p for p in pairs if p not in existing]
    if not missing:
        return
    ids = [request_id for request_id, _ in missing]
    details: dict[str, tuple[str, str, str, int | None]] = {}
    for chunk in chunks(ids, QUEUE_CHUNK):
        found = session.execute(
            select(Request.id, Request.scope, Request.name, Request.dest_rse_id, Request.bytes).where(
                Request.id.in_(chunk)
            )
        )
        details.update(
            (request_id, (scope, name, dest, size)) for request_id, scope, name, dest, size in found.tuples()
        )
    now = utcnow()
    rows = [
        {
            "request_id": request_id,
            "rse_id": rse_id,
            "scope": details[request_id][0],
            "name": details[request_id][1],
            "dest_rse_id": details[request_id][2],
            "bytes": details[request_id][3],
            "ranking": 0,
            "is_using": True,
            "created_at": now,
            "updated_at": now,
        }
        for request_id, rse_id in missing
        if request_id in details
    ]
    if rows:
        session.connection().execute(Source.__table__.insert(), rows)


def mark_unroutable(
    session: Session, worker: str, unroutable: Mapping[str, tuple[RequestState, str]]
) -> None:
    """Hand requests that cannot be routed, or that their tool refused, to the finisher with their
    reason (one executemany)."""
    _set_states(session, worker, [(rid, state, reason) for rid, (state, reason) in unroutable.items()])


def _set_states(
    session: Session, worker: str, changes: Sequence[tuple[str, RequestState, str | None]]
) -> None:
    if not changes:
        return
    table = Request.__table__
    statement = (
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.claimed_by == worker)
        .values(
            state=bindparam("b_state"),
            err_msg=bindparam("b_reason"),
            updated_at=utcnow(),
            claimed_by=None,
            claimed_until=None,
        )
    )
    session.connection().execute(
        statement,
        [{"b_id": rid, "b_state": state, "b_reason": _clip(reason)} for rid, state, reason in changes],
    )


def _clip(reason: str | None) -> str | None:
    return reason[:4000] if reason else reason


# --- poller and the submitter's look-up of unanswered submissions ---------------------------------
@dataclass(frozen=True)
class SubmittedRequest:
    id: str
    external_id: str
    external_host: str | None
    transfertool: str | None
    submitted_at: datetime | None = None
    retry_count: int = 0


@dataclass(frozen=True)
class LookUp:
    """Where the tool's answer puts requests whose submission went unanswered."""

    #: ``{request_id: external_id}``: the job holds the request (whatever its state).
    held: dict[str, str]
    #: The job exists without the request: it may go into a new job.
    unsent: list[str]
    #: The tool does not know the job (yet: the unanswered submission may still arrive), so
    #: the request may only be sent again in a job of the same key, hence the same id.
    unknown: list[str]


#: ``submitted_at`` falls back to the last change, so a row written without it still times out.
_SUBMITTED_COLUMNS = (
    Request.external_id,
    Request.external_host,
    Request.transfertool,
    func.coalesce(Request.submitted_at, Request.updated_at),
    Request.retry_count,
)


def claim_submitted(session: Session, worker: str, limit: int, lease_seconds: int) -> list[SubmittedRequest]:
    """Lease SUBMITTED requests to poll, those polled longest ago first."""
    rows = workqueue.SUBMITTED_REQUESTS.claim(
        session, worker, limit, lease_seconds, columns=_SUBMITTED_COLUMNS
    )
    return [SubmittedRequest(*row) for row in rows]


def claim_submitting(session: Session, worker: str, limit: int, lease_seconds: int) -> list[SubmittedRequest]:
    """Lease SUBMITTING requests nobody holds: their submission's answer never came (a timeout,
    a crash between recording the id and recording the answer), oldest first."""
    rows = workqueue.SUBMITTING_REQUESTS.claim(
        session, worker, limit, lease_seconds, columns=_SUBMITTED_COLUMNS
    )
    return [SubmittedRequest(*row) for row in rows]


def held_by_tool(requests: Sequence[SubmittedRequest], statuses: Sequence[TransferStatus]) -> LookUp:
    """Split requests whose submission went unanswered by what their tool now says.

    ``statuses`` is the tool's successful answer about the requests' external ids.  A request
    that the answer names under its own external id is in that job, whatever its state.  A
    request whose job the answer reports LOST (unknown) is in no job *yet*: the submission
    whose answer was lost may still be on its way, so it is sent again only under the same
    key.  Any other request is in a job that exists without it, and jobs do not grow: it is in
    no job and may be sent in a new one.
    """
    reported = {(s.request_id, s.external_id) for s in statuses if s.request_id is not None}
    unknown_jobs = {s.external_id for s in statuses if s.state is TransferState.LOST}
    held = {r.id: r.external_id for r in requests if (r.id, r.external_id) in reported}
    rest = [r for r in requests if r.id not in held]
    return LookUp(
        held,
        [r.id for r in rest if r.external_id not in unknown_jobs],
        [r.id for r in rest if r.external_id in unknown_jobs],
    )


def overdue(
    requests: Sequence[SubmittedRequest],
    settled: Iterable[str],
    timeout_seconds: int,
    now: datetime,
) -> list[SubmittedRequest]:
    """Requests submitted more than ``timeout_seconds`` before ``now`` whose outcome is not
    among ``settled`` (request ids reported final, or external ids reported LOST)."""
    settled = set(settled)
    horizon = now - timedelta(seconds=timeout_seconds)
    return [
        r
        for r in requests
        if r.submitted_at is not None
        and r.submitted_at < horizon
        and r.id not in settled
        and r.external_id not in settled
    ]


def terminal_outcomes(
    requests: Sequence[SubmittedRequest], statuses: Sequence[TransferStatus]
) -> tuple[list[TransferStatus], list[str]]:
    """The DONE/FAILED reports that belong to ``requests`` (same request *and* external id, so a
    stale report about an earlier attempt is ignored), and the external ids reported LOST."""
    current = {(r.id, r.external_id) for r in requests}
    finished = [
        s
        for s in statuses
        if s.state in (TransferState.DONE, TransferState.FAILED) and (s.request_id, s.external_id) in current
    ]
    lost = sorted({s.external_id for s in statuses if s.state is TransferState.LOST})
    return finished, lost


def mark_lost(session: Session, external_ids: Sequence[str]) -> int:
    """Every SUBMITTED request of these external ids becomes LOST (lease released) for the finisher."""
    changed = 0
    for chunk in chunks(list(external_ids), QUEUE_CHUNK):
        changed += rowcount(
            session.execute(
                update(Request)
                .where(Request.external_id.in_(chunk), Request.state == RequestState.SUBMITTED)
                .values(
                    state=RequestState.LOST,
                    err_msg="unknown to the transfer tool",
                    updated_at=utcnow(),
                    claimed_by=None,
                    claimed_until=None,
                )
                .execution_options(synchronize_session=False)
            )
        )
    return changed


# --- finisher ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FinishedRequest:
    id: str
    state: RequestState
    err_msg: str | None
    source_rse_id: str | None
    scope: str
    name: str
    dest_rse_id: str
    external_id: str | None


def claim_finished(session: Session, worker: str, limit: int, lease_seconds: int) -> list[FinishedRequest]:
    """Lease requests whose transfer ended (or could not start), oldest change first."""
    rows = workqueue.FINISHED_REQUESTS.claim(
        session,
        worker,
        limit,
        lease_seconds,
        columns=(
            Request.state,
            Request.err_msg,
            Request.source_rse_id,
            Request.scope,
            Request.name,
            Request.dest_rse_id,
            Request.external_id,
        ),
    )
    return [FinishedRequest(*row) for row in rows]


def requeue_unsent(
    session: Session, worker: str, request_ids: Sequence[str], *, same_job: bool = False
) -> int:
    """SUBMITTING requests that no job holds go back to QUEUED without counting an attempt:
    they never reached a tool, so nothing was tried (an FTS outage must not fail anything).

    With ``same_job`` they keep their external id and key, so the submitter sends them again
    in a job of that key (``LookUp.unknown``); otherwise both are cleared for a new job.
    """
    forget = {} if same_job else {"external_id": None, "external_key": None}
    changed = 0
    for chunk in chunks(list(request_ids), QUEUE_CHUNK):
        changed += rowcount(
            session.execute(
                update(Request)
                .where(
                    Request.id.in_(chunk),
                    Request.claimed_by == worker,
                    Request.state == RequestState.SUBMITTING,
                )
                .values(
                    state=RequestState.QUEUED,
                    **forget,
                    external_host=None,
                    submitted_at=None,
                    updated_at=utcnow(),
                    claimed_by=None,
                    claimed_until=None,
                )
                .execution_options(synchronize_session=False)
            )
        )
    return changed


def local_host() -> str:
    """The ``external_host`` recorded for the in-process tool: its transfers live in this host's process."""
    return f"local://{socket.gethostname()}"
