"""The conveyor's routing: claim QUEUED requests, throttle them, choose sources and URLs.

Every function works on a batch with a fixed number of statements, whatever the batch size:
candidates, distances, rankings, protocols and attributes are each read with one query per
batch (chunked ``IN`` lists).  The transfer tool itself is never called from here: the
submitter calls it after :func:`plan_transfers`, outside any transaction, so a slow FTS never
holds a database lock; what happens to a request from then on is recorded by
:mod:`datamgmt.core.inflight`.

Source ranking puts disk before tape, whatever the distances (as Rucio's PreferDiskOverTape: a
tape source costs a recall from the library, so it is used only when no disk copy can serve, and
routing tries the candidates in this order), then the ``distances`` row from source to
destination (a missing row counts as :data:`~datamgmt.core.rse_distance.UNKNOWN_DISTANCE`, so an
installation without a distance matrix still transfers), then fewer past failures (``sources.ranking`` is lowered by one
for every failed attempt from that source, so a retry prefers another replica where the first two
criteria tie).

Tape in the transfer itself: a tape source asks the tool to stage it first (``[conveyor]
bring_online`` and ``copy_pin_lifetime`` seconds), a tape destination asks it to watch the file
until it is on tape (the destination's ``archive_timeout`` attribute, else ``[conveyor]
archive_timeout``), so the transfer is done only once the file is archived.  A STAGEIN request
(a lock on an RSE with ``staging_required``) has its own replica as its only source and the same
URL at both ends: the tool brings the file online in place and pins it for the rule's remaining
lifetime (else ``[conveyor] copy_pin_lifetime``); nothing is copied.  A STAGEIN into a staging
buffer (:mod:`datamgmt.core.staging`) reads only from the tape RSEs that name the buffer, staged
and pinned the same way, then copied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from datamgmt.config import get_config
from datamgmt.core import workqueue
from datamgmt.core.db.constants import ReplicaState, RequestState, RequestType, RSEType
from datamgmt.core.db.models import RSE, Distance, Replica, Request, RSEAttribute, Rule, Source
from datamgmt.core.db.types import utcnow
from datamgmt.core.expression import as_number, rse_ids_for
from datamgmt.core.keys import QUEUE_CHUNK, chunks, keys_in
from datamgmt.core.rse import protocols_by_rse_id
from datamgmt.core.rse_distance import UNKNOWN_DISTANCE
from datamgmt.core.staging import staging_buffers
from datamgmt.core.transfer_limit import limit_caps
from datamgmt.exceptions import RSEProtocolNotSupported
from datamgmt.rse.lfn2pfn import DEFAULT_ALGORITHM
from datamgmt.rse.protocols import Protocol, ProtocolRecord, create_protocol, protocols_ordered
from datamgmt.transfertool.base import TransferSpec

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
    #: The key of the job an unanswered submission sent it in, which the tool did not know:
    #: it goes out again only in a job of that key (see :attr:`TransferSpec.job_key`).
    job_key: str | None = None
    source_replica_expression: str | None = None
    request_type: RequestType = RequestType.TRANSFER
    #: Seconds a STAGEIN keeps the file online: what is left of its rule's lifetime (None: forever).
    pin_lifetime: int | None = None

    @property
    def stages(self) -> bool:
        """A STAGEIN: in place, or into a staging buffer."""
        return self.request_type is RequestType.STAGEIN


@dataclass(frozen=True)
class Candidate:
    """An AVAILABLE replica that could feed a request."""

    rse_id: str
    rse_type: RSEType
    path: str | None
    distance: int
    ranking: int

    @property
    def cost(self) -> tuple[bool, int, int]:
        return self.rse_type is RSEType.TAPE, self.distance, -self.ranking


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
    # Columns below are read by name, not position, into QueuedRequest's optional fields.
    Request.request_type,
    Request.external_key,
    Request.created_at,
)
#: The leading claimed columns (the id, then scope … retry_count) that fill QueuedRequest in order.
_POSITIONAL = 11


def claim_queued(
    session: Session,
    worker: str,
    limit: int,
    lease_seconds: int,
    request_types: Sequence[RequestType] | None = None,
) -> list[QueuedRequest]:
    """Lease up to ``limit`` QUEUED requests (of ``request_types`` only, if given) whose back-off is
    over: highest priority, oldest first."""
    now = utcnow()
    kinds = [Request.request_type.in_(list(request_types))] if request_types is not None else []
    rows = workqueue.QUEUED_REQUESTS.claim(
        session, worker, limit, lease_seconds, columns=_REQUEST_COLUMNS, narrowed=kinds
    )
    rule_ids = sorted({row.rule_id for row in rows if row.rule_id})
    expressions: dict[str, str] = {}
    expiries: dict[str, Any] = {}
    for chunk in chunks(rule_ids, QUEUE_CHUNK):
        for rule_id, expression, expires_at in session.execute(
            select(Rule.id, Rule.source_replica_expression, Rule.expires_at).where(Rule.id.in_(chunk))
        ):
            if expression is not None:
                expressions[rule_id] = expression
            if expires_at is not None:
                expiries[rule_id] = max(1, int((expires_at - now).total_seconds()))
    # RETURNING gives no order: restore the claim's (priority, age) order for the throttler.
    rows.sort(key=lambda row: (-row.priority, row.created_at, row.id))
    return [
        QueuedRequest(
            *row[:_POSITIONAL],  # type: ignore[misc]
            job_key=row.external_key,
            source_replica_expression=expressions.get(row.rule_id or ""),
            request_type=row.request_type,
            pin_lifetime=expiries.get(row.rule_id or ""),
        )
        for row in rows
    ]


# --- throttling ----------------------------------------------------------------------------------
@dataclass
class _Slots:
    """Active requests (SUBMITTING or SUBMITTED) per RSE at one end of the transfer, in all and
    per activity, against the operators' caps (``/requests/transfer_limits``) for that end.
    Counted with one query per batch and raised as the batch takes slots."""

    caps: dict[tuple[str, str | None], int]
    per_rse: dict[str, int]
    per_pair: dict[tuple[str, str | None], int]

    @classmethod
    def count(cls, session: Session, direction: str, *, always: bool = False) -> _Slots:
        """The slots of the DESTINATION or SOURCE end; without caps (and not ``always``)
        nothing is counted."""
        caps = limit_caps(session, direction)
        per_rse: dict[str, int] = {}
        per_pair: dict[tuple[str, str | None], int] = {}
        if caps or always:
            end = Request.dest_rse_id if direction == "DESTINATION" else Request.source_rse_id
            rows = session.execute(
                select(end, Request.activity, func.count())
                .where(Request.state.in_(ACTIVE_STATES), end.is_not(None))
                .group_by(end, Request.activity)
            )
            for rse_id, activity, count in rows:
                per_pair[(rse_id, activity)] = count
                per_rse[rse_id] = per_rse.get(rse_id, 0) + count
        return cls(caps, per_rse, per_pair)

    def capped(self, rse_id: str, activity: str | None) -> bool:
        """Whether a limit on ``rse_id`` (for all activities, or for ``activity``) is reached."""
        cap_all, cap_activity = self.caps.get((rse_id, None)), self.caps.get((rse_id, activity))
        return (cap_all is not None and self.per_rse.get(rse_id, 0) >= cap_all) or (
            cap_activity is not None and self.per_pair.get((rse_id, activity), 0) >= cap_activity
        )

    def take(self, rse_id: str, activity: str | None) -> None:
        self.per_rse[rse_id] = self.per_rse.get(rse_id, 0) + 1
        self.per_pair[(rse_id, activity)] = self.per_pair.get((rse_id, activity), 0) + 1


def throttle(
    session: Session,
    requests: Sequence[QueuedRequest],
    *,
    max_active_per_rse: int,
    activity_limits: Mapping[str, int] | None = None,
) -> tuple[list[QueuedRequest], list[QueuedRequest]]:
    """Split ``requests`` (already in priority order) into those that fit and those over a limit.

    A slot is a request SUBMITTING or SUBMITTED; limits are per destination RSE (the
    configured ``max_active_per_rse``, ≤ 0 meaning unlimited, and the DESTINATION transfer
    limits) and per activity.
    """
    activity_limits = activity_limits or {}
    destinations = _Slots.count(session, "DESTINATION", always=max_active_per_rse > 0)
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
        rse_full = (
            max_active_per_rse > 0 and destinations.per_rse.get(request.dest_rse_id, 0) >= max_active_per_rse
        )
        limit = activity_limits.get(request.activity)
        activity_full = limit is not None and per_activity.get(request.activity, 0) >= limit
        if rse_full or activity_full or destinations.capped(request.dest_rse_id, request.activity):
            held.append(request)
            continue
        destinations.take(request.dest_rse_id, request.activity)
        per_activity[request.activity] = per_activity.get(request.activity, 0) + 1
        allowed.append(request)
    return allowed, held


# --- sources -------------------------------------------------------------------------------------
def source_candidates(session: Session, requests: Sequence[QueuedRequest]) -> dict[str, list[Candidate]]:
    """Ranked AVAILABLE replicas on readable RSEs for each request (best first), in four queries."""
    keys = sorted({(r.scope, r.name) for r in requests})
    replicas: dict[tuple[str, str], list[tuple[str, RSEType, str | None]]] = {}
    for chunk in chunks(keys, QUEUE_CHUNK):
        statement = (
            select(Replica.scope, Replica.name, Replica.rse_id, RSE.rse_type, Replica.path)
            .join(RSE, RSE.id == Replica.rse_id)
            .where(
                keys_in((Replica.scope, Replica.name), list(chunk)),
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
    for chunk in chunks([r.id for r in requests], QUEUE_CHUNK):
        rows = session.execute(
            select(Source.request_id, Source.rse_id, Source.ranking).where(Source.request_id.in_(chunk))
        )
        rankings.update(((request_id, rse_id), ranking) for request_id, rse_id, ranking in rows)
    allowed = _expression_rse_ids(session, requests)
    buffers = staging_buffers(session, dest_ids)
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
            if _may_serve(request, rse_id, buffers.get(request.dest_rse_id, set()))
            and (expression_ids is None or request.stages or rse_id in expression_ids)
        ]
        result[request.id] = sorted(found, key=lambda c: c.cost)
    return result


def _may_serve(request: QueuedRequest, rse_id: str, buffer_of: set[str]) -> bool:
    """A transfer reads from any other RSE; a STAGEIN from its own (in place) or, into a staging
    buffer, from the tape RSEs that name it (Rucio's EnforceStagingBuffer)."""
    if not request.stages:
        return rse_id != request.dest_rse_id
    return rse_id == request.dest_rse_id or rse_id in buffer_of


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
                    RSEAttribute.rse_id.in_(ids),
                    RSEAttribute.key.in_(("fts", "lfn2pfn_algorithm", "archive_timeout")),
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

    def tape_parameters(self, source_id: str, dest_id: str) -> dict[str, int | None]:
        """The spec's tape fields for a copy from ``source_id`` to ``dest_id`` (None where disk)."""
        config = get_config()
        params: dict[str, int | None] = {
            "bring_online": None,
            "copy_pin_lifetime": None,
            "archive_timeout": None,
        }
        if self.rses[source_id][1] is RSEType.TAPE:
            params["bring_online"] = config.get_int("conveyor", "bring_online")
            params["copy_pin_lifetime"] = config.get_int("conveyor", "copy_pin_lifetime")
        if self.rses[dest_id][1] is RSEType.TAPE:
            attribute = self.attributes[dest_id].get("archive_timeout")
            timeout = as_number(attribute) if attribute is not None else None
            params["archive_timeout"] = (
                int(timeout) if timeout else config.get_int("conveyor", "archive_timeout")
            )
        return params

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
    """Route a claimed batch: throttle, rank sources, match protocols and build both URLs.

    Sources whose SOURCE transfer limit is reached are passed over; a request that only such a
    source could serve is held back with the throttled ones."""
    allowed, held = throttle(
        session, requests, max_active_per_rse=max_active_per_rse, activity_limits=activity_limits
    )
    throttled = [r.id for r in held]
    sources = _Slots.count(session, "SOURCE")
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
        usable = [c for c in found if not sources.capped(c.rse_id, request.activity)]
        routed = _route(endpoints, request, usable, to_disk=dest_type is RSEType.DISK)
        if isinstance(routed, PlannedTransfer):
            sources.take(routed.source_rse_id, request.activity)
            transfers.append(routed)
        elif len(usable) < len(found):  # a source at its limit may serve it later
            throttled.append(request.id)
        else:
            unroutable[request.id] = (RequestState.MISMATCH_SCHEME, routed)
    return Plan(transfers, unroutable, throttled)


def _tape_parameters(
    endpoints: _Endpoints, request: QueuedRequest, candidate: Candidate
) -> dict[str, int | None]:
    if not request.stages:
        return endpoints.tape_parameters(candidate.rse_id, request.dest_rse_id)
    config = get_config()
    pin = request.pin_lifetime or config.get_int("conveyor", "copy_pin_lifetime")
    return {
        "bring_online": config.get_int("conveyor", "bring_online"),
        "copy_pin_lifetime": pin,
        "archive_timeout": None,
    }


def _route(
    endpoints: _Endpoints, request: QueuedRequest, candidates: Sequence[Candidate], *, to_disk: bool
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
        in_place = candidate.rse_id == request.dest_rse_id  # a STAGEIN brought online where it is
        dest_url = (
            source_url
            if in_place
            else endpoints.pfn(request.dest_rse_id, write, request.scope, request.name, None)
        )
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
            job_key=request.job_key,
            source_roots=[read.prefix if read.scheme == "file" else None],
            destination_root=write.prefix if write.scheme == "file" else None,
            overwrite=to_disk and not in_place,
            verify_checksum=_verify_mode(read.scheme, write.scheme, request.adler32, request.md5),
            **_tape_parameters(endpoints, request, candidate),  # type: ignore[arg-type]
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
