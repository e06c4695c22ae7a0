"""The conveyor's catalogue side: claim requests, choose sources and URLs, record outcomes.

Every function works on a batch with a fixed number of statements, whatever the batch size:
candidates, distances, rankings, protocols and attributes are each read with one query per
batch (chunked ``IN`` lists), and state changes are one ``UPDATE … WHERE id IN`` or one
``executemany``.  The transfer tool itself is never called from here: the submitter calls it
between :func:`plan_transfers` and :func:`mark_submitted`, outside any transaction, so a slow
FTS never holds a database lock.

Source ranking follows the conveyor issue's order: the ``distances`` row from source to
destination (a missing row counts as :data:`UNKNOWN_DISTANCE`, so an installation without a
distance matrix still transfers), then disk before tape, then fewer past failures (``sources.
ranking`` is lowered by one for every failed attempt from that source, so a retry prefers
another replica where the first two criteria tie).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, select, tuple_, update
from sqlalchemy.orm import Session

from datamgmt.core import claim as claiming
from datamgmt.core.db.constants import ReplicaState, RequestState, RSEType
from datamgmt.core.db.models import RSE, Distance, Replica, Request, RSEAttribute, Rule, Source
from datamgmt.core.db.types import utcnow
from datamgmt.core.did import chunks
from datamgmt.core.expression import rse_ids_for
from datamgmt.core.rse import protocols_by_rse_id
from datamgmt.exceptions import RSEProtocolNotSupported
from datamgmt.rse.lfn2pfn import DEFAULT_ALGORITHM
from datamgmt.rse.protocols import Protocol, ProtocolRecord, create_protocol, protocols_ordered
from datamgmt.transfertool.base import TransferSpec, TransferState, TransferStatus

#: Distance assumed when no ``distances`` row links two RSEs.
UNKNOWN_DISTANCE = 1_000_000
#: Keys per ``IN`` list.
CHUNK = claiming.CHUNK
#: Request states the finisher consumes: the tool forgot the transfer, or it never reached a tool.
FINISHER_STATES = (
    RequestState.LOST,
    RequestState.NO_SOURCES,
    RequestState.MISMATCH_SCHEME,
    RequestState.SUBMISSION_FAILED,
)
#: Requests that occupy a slot in the throttler.
ACTIVE_STATES = (RequestState.SUBMITTING, RequestState.SUBMITTED)
#: URL schemes that can copy to each other (Rucio's SCHEME_MAP idea); same family is preferred.
_FAMILIES = {"davs": "http", "https": "http", "dav": "http", "http": "http", "root": "root", "xroot": "root"}


def _family(scheme: str) -> str:
    return _FAMILIES.get(scheme, "s3" if scheme.startswith("s3") else scheme)


def _verify_mode(read_scheme: str, write_scheme: str, adler32: str | None, md5: str | None) -> str:
    """Which ends a copy verifies.  A transfer carries one checksum, adler32 when known (an FTS job
    has a single one), and object stores cannot compute adler32: like Rucio, an S3 end is then
    left unverified and only the other end is checked."""
    if not adler32:
        return "both" if md5 else "none"
    source_ok, dest_ok = (_family(scheme) != "s3" for scheme in (read_scheme, write_scheme))
    return {(True, True): "both", (True, False): "source", (False, True): "target"}.get(
        (source_ok, dest_ok), "none"
    )


# --- what the submitter works with ---------------------------------------------------------------
@dataclass(frozen=True)
class QueuedRequest:
    """A claimed QUEUED request with what routing needs from its rule."""

    id: str
    scope: str
    name: str
    dest_rse_id: str
    rule_id: str | None
    activity: str
    priority: int
    bytes: int | None
    adler32: str | None
    md5: str | None
    retry_count: int
    source_replica_expression: str | None = None


@dataclass(frozen=True)
class Candidate:
    """An AVAILABLE replica that could feed a request."""

    rse_id: str
    rse_type: RSEType
    path: str | None
    distance: int
    ranking: int

    @property
    def cost(self) -> tuple[int, int, int]:
        return self.distance, self.rse_type is RSEType.TAPE, -self.ranking


@dataclass(frozen=True)
class PlannedTransfer:
    """A routed request: the spec for the tool and where to send it."""

    request: QueuedRequest
    source_rse_id: str
    spec: TransferSpec
    #: The FTS endpoint from the destination's ``fts`` attribute, or None (config default / local).
    fts_endpoint: str | None


@dataclass(frozen=True)
class Plan:
    """The outcome of routing one batch."""

    transfers: list[PlannedTransfer]
    #: request id → (state, reason) for requests that cannot be routed.
    unroutable: dict[str, tuple[RequestState, str]]
    #: Requests held back by the throttler (released for a later cycle).
    throttled: list[str]


@dataclass(frozen=True)
class Submission:
    """What the submitter persists for one submitted request."""

    request_id: str
    external_id: str
    external_host: str
    transfertool: str
    source_rse_id: str
    dest_url: str


# --- claiming ------------------------------------------------------------------------------------
_REQUEST_COLUMNS = (
    Request.scope,
    Request.name,
    Request.dest_rse_id,
    Request.rule_id,
    Request.activity,
    Request.priority,
    Request.bytes,
    Request.adler32,
    Request.md5,
    Request.retry_count,
    Request.created_at,
)


def claim_queued(session: Session, worker: str, limit: int, lease_seconds: int) -> list[QueuedRequest]:
    """Lease up to ``limit`` QUEUED transfer requests whose back-off is over: highest priority, oldest first."""
    now = utcnow()
    rows = claiming.claim(
        session,
        Request,
        worker,
        filters=[
            Request.state == RequestState.QUEUED,
            or_(Request.not_before.is_(None), Request.not_before <= now),
        ],
        order_by=[Request.priority.desc(), Request.created_at, Request.id],
        limit=limit,
        lease_seconds=lease_seconds,
        columns=_REQUEST_COLUMNS,
    )
    rule_ids = sorted({row.rule_id for row in rows if row.rule_id})
    expressions: dict[str, str] = {}
    for chunk in chunks(rule_ids, CHUNK):
        expressions.update(
            session.execute(
                select(Rule.id, Rule.source_replica_expression).where(
                    Rule.id.in_(chunk), Rule.source_replica_expression.is_not(None)
                )
            )
            .tuples()
            .all()
        )
    # RETURNING gives no order: restore the claim's (priority, age) order for the throttler.
    rows.sort(key=lambda row: (-row.priority, row.created_at, row.id))
    return [
        QueuedRequest(*row[:-1], source_replica_expression=expressions.get(row.rule_id or ""))  # type: ignore[misc]
        for row in rows
    ]


# --- throttling ----------------------------------------------------------------------------------
def throttle(
    session: Session,
    requests: Sequence[QueuedRequest],
    *,
    max_active_per_rse: int,
    activity_limits: Mapping[str, int] | None = None,
) -> tuple[list[QueuedRequest], list[QueuedRequest]]:
    """Split ``requests`` (already in priority order) into those that fit and those over a limit.

    A slot is a request SUBMITTING or SUBMITTED; limits are per destination RSE and per activity.
    ``max_active_per_rse`` ≤ 0 means unlimited.
    """
    activity_limits = activity_limits or {}
    per_rse = dict(
        session.execute(
            select(Request.dest_rse_id, func.count())
            .where(Request.state.in_(ACTIVE_STATES))
            .group_by(Request.dest_rse_id)
        )
        .tuples()
        .all()
    )
    per_activity: dict[str, int] = {}
    if activity_limits:
        per_activity = dict(
            session.execute(
                select(Request.activity, func.count())
                .where(Request.state.in_(ACTIVE_STATES), Request.activity.in_(list(activity_limits)))
                .group_by(Request.activity)
            )
            .tuples()
            .all()
        )
    allowed, held = [], []
    for request in requests:
        rse_full = max_active_per_rse > 0 and per_rse.get(request.dest_rse_id, 0) >= max_active_per_rse
        limit = activity_limits.get(request.activity)
        activity_full = limit is not None and per_activity.get(request.activity, 0) >= limit
        if rse_full or activity_full:
            held.append(request)
            continue
        per_rse[request.dest_rse_id] = per_rse.get(request.dest_rse_id, 0) + 1
        per_activity[request.activity] = per_activity.get(request.activity, 0) + 1
        allowed.append(request)
    return allowed, held


# --- sources -------------------------------------------------------------------------------------
def source_candidates(session: Session, requests: Sequence[QueuedRequest]) -> dict[str, list[Candidate]]:
    """Ranked AVAILABLE replicas on readable RSEs for each request (best first), in four queries."""
    keys = sorted({(r.scope, r.name) for r in requests})
    replicas: dict[tuple[str, str], list[tuple[str, RSEType, str | None]]] = {}
    for chunk in chunks(keys, CHUNK):
        statement = (
            select(Replica.scope, Replica.name, Replica.rse_id, RSE.rse_type, Replica.path)
            .join(RSE, RSE.id == Replica.rse_id)
            .where(
                tuple_(Replica.scope, Replica.name).in_(list(chunk)),
                Replica.state == ReplicaState.AVAILABLE,
                RSE.availability_read.is_(True),
                RSE.deleted.is_(False),
            )
        )
        for scope, name, rse_id, rse_type, path in session.execute(statement):
            replicas.setdefault((scope, name), []).append((rse_id, rse_type, path))
    source_ids = sorted({rse_id for found in replicas.values() for rse_id, _, _ in found})
    dest_ids = sorted({r.dest_rse_id for r in requests})
    distances: dict[tuple[str, str], int] = {}
    if source_ids:
        rows = session.execute(
            select(Distance.src_rse_id, Distance.dest_rse_id, Distance.distance).where(
                Distance.src_rse_id.in_(source_ids), Distance.dest_rse_id.in_(dest_ids)
            )
        )
        distances = {(src, dst): value for src, dst, value in rows if value is not None}
    rankings: dict[tuple[str, str], int] = {}
    for chunk in chunks([r.id for r in requests], CHUNK):
        rows = session.execute(
            select(Source.request_id, Source.rse_id, Source.ranking).where(Source.request_id.in_(chunk))
        )
        rankings.update(((request_id, rse_id), ranking) for request_id, rse_id, ranking in rows)
    allowed = _expression_rse_ids(session, requests)
    result: dict[str, list[Candidate]] = {}
    for request in requests:
        expression_ids = allowed.get(request.source_replica_expression or "")
        found = [
            Candidate(
                rse_id=rse_id,
                rse_type=rse_type,
                path=path,
                distance=distances.get((rse_id, request.dest_rse_id), UNKNOWN_DISTANCE),
                ranking=rankings.get((request.id, rse_id), 0),
            )
            for rse_id, rse_type, path in replicas.get((request.scope, request.name), [])
            if rse_id != request.dest_rse_id and (expression_ids is None or rse_id in expression_ids)
        ]
        result[request.id] = sorted(found, key=lambda c: c.cost)
    return result


def _expression_rse_ids(session: Session, requests: Sequence[QueuedRequest]) -> dict[str, set[str]]:
    """RSE ids each distinct ``source_replica_expression`` of the batch allows (one resolution each)."""
    expressions = sorted({r.source_replica_expression for r in requests if r.source_replica_expression})
    if not expressions:
        return {}
    return {expression: set(rse_ids_for(session, expression)) for expression in expressions}


# --- protocols and URLs --------------------------------------------------------------------------
def match_protocols(
    source: Sequence[ProtocolRecord | Mapping[str, Any]],
    destination: Sequence[ProtocolRecord | Mapping[str, Any]],
) -> tuple[ProtocolRecord, ProtocolRecord]:
    """The (source, destination) pair for a third-party copy.

    The source's ``third_party_copy_read`` protocols meet the destination's
    ``third_party_copy_write`` ones; a pair of the same scheme family wins, then the destination's
    priority, then the source's.  Raises RSEProtocolNotSupported when either side offers none.
    """
    reads = protocols_ordered(source, "third_party_copy_read")
    writes = protocols_ordered(destination, "third_party_copy_write")
    if not reads or not writes:
        side = "source" if not reads else "destination"
        raise RSEProtocolNotSupported(f"the {side} RSE offers no third-party-copy protocol")
    pairs = [
        ((_family(r.scheme) != _family(w.scheme), r.scheme != w.scheme, wi, ri), r, w)
        for wi, w in enumerate(writes)
        for ri, r in enumerate(reads)
    ]
    _, read, write = min(pairs, key=lambda item: item[0])
    return read, write


class _Endpoints:
    """Protocols, attributes and RSE flags of the RSEs one batch touches, read once."""

    def __init__(self, session: Session, rse_ids: Iterable[str]) -> None:
        ids = sorted(set(rse_ids))
        self.protocols = protocols_by_rse_id(session, ids) if ids else {}
        self.attributes: dict[str, dict[str, str]] = {rse_id: {} for rse_id in ids}
        self.rses: dict[str, tuple[str, RSEType, bool]] = {}
        if ids:
            rows = session.execute(
                select(RSEAttribute.rse_id, RSEAttribute.key, RSEAttribute.value).where(
                    RSEAttribute.rse_id.in_(ids), RSEAttribute.key.in_(("fts", "lfn2pfn_algorithm"))
                )
            )
            for rse_id, key, value in rows:
                self.attributes[rse_id][key] = value
            rows = session.execute(
                select(RSE.id, RSE.rse, RSE.rse_type, RSE.availability_write).where(RSE.id.in_(ids))
            )
            self.rses = {rse_id: (name, rse_type, writable) for rse_id, name, rse_type, writable in rows}
        self._instances: dict[tuple[str, str, str, int, str], Protocol] = {}

    def protocol(self, rse_id: str, record: ProtocolRecord) -> Protocol:
        key = (rse_id, record.scheme, record.hostname, record.port, record.prefix)
        if key not in self._instances:
            algorithm = self.attributes[rse_id].get("lfn2pfn_algorithm") or DEFAULT_ALGORITHM
            self._instances[key] = create_protocol(record, lfn2pfn_algorithm=algorithm)
        return self._instances[key]

    def pfn(self, rse_id: str, record: ProtocolRecord, scope: str, name: str, path: str | None) -> str:
        lfn = {"scope": scope, "name": name, **({"path": path} if path else {})}
        return self.protocol(rse_id, record).lfns2pfns([lfn])[f"{scope}:{name}"]

    def fts(self, rse_id: str) -> str | None:
        value = self.attributes[rse_id].get("fts")
        return value.split(",")[0].strip() or None if value else None


def plan_transfers(
    session: Session,
    requests: Sequence[QueuedRequest],
    *,
    max_active_per_rse: int = 0,
    activity_limits: Mapping[str, int] | None = None,
) -> Plan:
    """Route a claimed batch: throttle, rank sources, match protocols and build both URLs."""
    allowed, held = throttle(
        session, requests, max_active_per_rse=max_active_per_rse, activity_limits=activity_limits
    )
    candidates = source_candidates(session, allowed)
    involved = {r.dest_rse_id for r in allowed} | {c.rse_id for found in candidates.values() for c in found}
    endpoints = _Endpoints(session, involved)
    transfers: list[PlannedTransfer] = []
    unroutable: dict[str, tuple[RequestState, str]] = {}
    for request in allowed:
        dest_name, dest_type, writable = endpoints.rses[request.dest_rse_id]
        found = candidates[request.id]
        if not writable:
            unroutable[request.id] = (
                RequestState.SUBMISSION_FAILED,
                f"destination {dest_name} is not writable",
            )
            continue
        if not found:
            unroutable[request.id] = (RequestState.NO_SOURCES, "no AVAILABLE replica on a readable RSE")
            continue
        routed = _route(endpoints, request, found, overwrite=dest_type is RSEType.DISK)
        if isinstance(routed, str):
            unroutable[request.id] = (RequestState.MISMATCH_SCHEME, routed)
        else:
            transfers.append(routed)
    return Plan(transfers, unroutable, [r.id for r in held])


def _route(
    endpoints: _Endpoints, request: QueuedRequest, candidates: Sequence[Candidate], *, overwrite: bool
) -> PlannedTransfer | str:
    """The first candidate with a protocol pair towards the destination, or why none has one."""
    errors = []
    destination_protocols = endpoints.protocols.get(request.dest_rse_id, [])
    for candidate in candidates:
        try:
            read, write = match_protocols(
                endpoints.protocols.get(candidate.rse_id, []), destination_protocols
            )
        except RSEProtocolNotSupported as exc:
            errors.append(f"{endpoints.rses[candidate.rse_id][0]}: {exc}")
            continue
        source_url = endpoints.pfn(candidate.rse_id, read, request.scope, request.name, candidate.path)
        dest_url = endpoints.pfn(request.dest_rse_id, write, request.scope, request.name, None)
        spec = TransferSpec(
            request_id=request.id,
            sources=[source_url],
            destination=dest_url,
            bytes=request.bytes,
            adler32=request.adler32,
            md5=request.md5,
            activity=request.activity,
            priority=request.priority,
            rule_id=request.rule_id,
            overwrite=overwrite,
            verify_checksum=_verify_mode(read.scheme, write.scheme, request.adler32, request.md5),
            metadata={
                "scope": request.scope,
                "name": request.name,
                "src_rse_id": candidate.rse_id,
                "dest_rse_id": request.dest_rse_id,
                "src_rse": endpoints.rses[candidate.rse_id][0],
                "dst_rse": endpoints.rses[request.dest_rse_id][0],
            },
        )
        return PlannedTransfer(request, candidate.rse_id, spec, endpoints.fts(request.dest_rse_id))
    return "; ".join(errors)


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
    overwritten.  Returns how many rows changed.
    """
    if not submissions:
        return 0
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
                "b_external_host": s.external_host,
                "b_transfertool": s.transfertool,
                "b_source_rse_id": s.source_rse_id,
                "b_dest_url": s.dest_url,
            }
            for s in submissions
        ],
    )
    recorded: set[str] = set()
    for chunk in chunks([s.request_id for s in submissions], CHUNK):
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
    for chunk in chunks(pairs, CHUNK):
        existing.update(
            session.execute(
                select(Source.request_id, Source.rse_id).where(
                    tuple_(Source.request_id, Source.rse_id).in_(chunk)
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
    for chunk in chunks(ids, CHUNK):
        rows = session.execute(
            select(Request.id, Request.scope, Request.name, Request.dest_rse_id, Request.bytes).where(
                Request.id.in_(chunk)
            )
        )
        details.update((row[0], tuple(row[1:])) for row in rows)  # type: ignore[misc]
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


#: ``submitted_at`` falls back to the last change, so a row written without it still times out.
_SUBMITTED_COLUMNS = (
    Request.external_id,
    Request.external_host,
    Request.transfertool,
    func.coalesce(Request.submitted_at, Request.updated_at),
)


def claim_submitted(session: Session, worker: str, limit: int, lease_seconds: int) -> list[SubmittedRequest]:
    """Lease SUBMITTED requests to poll, those polled longest ago first."""
    rows = claiming.claim(
        session,
        Request,
        worker,
        filters=[Request.state == RequestState.SUBMITTED, Request.external_id.is_not(None)],
        order_by=[Request.claimed_until.is_not(None), Request.claimed_until, Request.submitted_at],
        limit=limit,
        lease_seconds=lease_seconds,
        columns=_SUBMITTED_COLUMNS,
    )
    return [SubmittedRequest(*row) for row in rows]  # type: ignore[arg-type]


def claim_submitting(session: Session, worker: str, limit: int, lease_seconds: int) -> list[SubmittedRequest]:
    """Lease SUBMITTING requests nobody holds: their submission's answer never came (a timeout,
    a crash between recording the id and recording the answer), oldest first."""
    rows = claiming.claim(
        session,
        Request,
        worker,
        filters=[Request.state == RequestState.SUBMITTING, Request.external_id.is_not(None)],
        order_by=[Request.submitted_at, Request.id],
        limit=limit,
        lease_seconds=lease_seconds,
        columns=_SUBMITTED_COLUMNS,
    )
    return [SubmittedRequest(*row) for row in rows]  # type: ignore[arg-type]


def held_by_tool(
    requests: Sequence[SubmittedRequest], statuses: Sequence[TransferStatus]
) -> tuple[dict[str, str], list[str]]:
    """Split requests whose submission went unanswered by what their tool now says.

    ``statuses`` is the tool's successful answer about the requests' external ids.  A request
    that the answer names under its own external id is in that job, whatever its state:
    ``{request_id: external_id}``.  Any other is in no job (the job does not exist, or exists
    without it) and may be submitted again: the list of those ids.
    """
    reported = {(s.request_id, s.external_id) for s in statuses if s.request_id is not None}
    held = {r.id: r.external_id for r in requests if (r.id, r.external_id) in reported}
    return held, [r.id for r in requests if r.id not in held]


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
    for chunk in chunks(list(external_ids), CHUNK):
        changed += session.execute(
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
        ).rowcount
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
    rows = claiming.claim(
        session,
        Request,
        worker,
        filters=[Request.state.in_(FINISHER_STATES)],
        order_by=[Request.updated_at, Request.id],
        limit=limit,
        lease_seconds=lease_seconds,
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
    return [FinishedRequest(*row) for row in rows]  # type: ignore[arg-type]


def requeue_unsent(session: Session, worker: str, request_ids: Sequence[str]) -> int:
    """SUBMITTING requests that no job holds go back to QUEUED without counting an attempt:
    they never reached a tool, so nothing was tried (an FTS outage must not fail anything)."""
    changed = 0
    for chunk in chunks(list(request_ids), CHUNK):
        changed += session.execute(
            update(Request)
            .where(
                Request.id.in_(chunk),
                Request.claimed_by == worker,
                Request.state == RequestState.SUBMITTING,
            )
            .values(
                state=RequestState.QUEUED,
                external_id=None,
                external_host=None,
                submitted_at=None,
                updated_at=utcnow(),
                claimed_by=None,
                claimed_until=None,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
    return changed


def local_host() -> str:
    """The ``external_host`` recorded for the in-process tool: its transfers live in this host's process."""
    return f"local://{socket.gethostname()}"
