"""``/replicas/bad…``, ``/replicas/suspicious``, ``/replicas/quarantine``, ``/replicas/tombstone``:
declaring replicas bad, suspicious or temporarily unavailable, and what Rucio lists of them.

Declaring BAD, by PFN or DID, and everything that ends a replica's life early is for admins
(Rucio's generic policy: root); reporting a replica as suspicious is open to every account,
as in Rucio, because it changes nothing but the report list.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.openapi import doc, schema_object
from datamgmt.api.params import dict_list, json_object, key, query_int
from datamgmt.api.pfns import PFNBuilder
from datamgmt.api.streaming import created, done, json_response, stream
from datamgmt.core import bad_replica, replica_state
from datamgmt.core import replica as replicas
from datamgmt.core.db.constants import BadFilesStatus
from datamgmt.core.expression import rse_ids_for
from datamgmt.core.replica_path import replicas_at_pfns
from datamgmt.core.rse import get_rse_id, rse_names_by_id
from datamgmt.core.validation import shown
from datamgmt.exceptions import InputValidationError, InvalidType, ReplicaNotFound, RSENotFound

bp = Blueprint("bad_replicas", __name__, url_prefix="/replicas")

_STRINGS = {"type": "array", "items": {"type": "string"}, "x-rucio-error": "InvalidType"}
_DIDS = {
    "type": "array",
    "items": schema_object(["scope", "name"], scope={"type": "string"}, name={"type": "string"}),
}
#: Declarations ``POST /replicas/bad/pfns`` accepts (Rucio's BadPFNStatus).
PFN_STATES = ("BAD", "SUSPICIOUS", "TEMPORARY_UNAVAILABLE")


def _when(value: object, name: str) -> datetime | None:
    """A date or date-time in any ISO form Rucio's clients send (``2026-12-03``, ``…T10:00:00.000000``)."""
    if value in (None, ""):
        return None
    try:
        return datetime.fromisoformat(str(value)).replace(tzinfo=None)
    except ValueError as exc:
        raise InputValidationError(f"{name} must be an ISO date or date-time, not {shown(value)}") from exc


def _declare(
    session: Session,
    by_rse_id: dict[str, list[tuple[str, str]]],
    status: BadFilesStatus,
    reason: str | None,
    account: str,
    **options: Any,
) -> dict[str, list[str]]:
    """Declare per RSE; Rucio's answer: RSE name -> what was not declared, RSEs with nothing left out omitted."""
    names = _rse_names(session, list(by_rse_id))
    undeclared = {}
    for rse_id, keys in by_rse_id.items():
        left = replica_state.declare(session, names[rse_id], keys, status, reason, account, **options)
        if left:
            undeclared[names[rse_id]] = left
    return undeclared


def _rse_names(session: Session, rse_ids: list[str]) -> dict[str, str]:
    names = rse_names_by_id(session, rse_ids)
    unknown = [rse_id for rse_id in rse_ids if rse_id not in names]
    if unknown:
        raise RSENotFound(f"RSE id {shown(unknown[0])} does not exist")
    return names


def _by_pfn(session: Session, pfns: list[str]) -> dict[str, list[tuple[str, str]]]:
    found, unknown = replicas_at_pfns(session, pfns)
    if unknown:
        raise ReplicaNotFound(f"No replica at {len(unknown)} of the PFNs, e.g. {shown(unknown[0], 120)}")
    return {rse_id: [(scope, name) for scope, name, _ in rows] for rse_id, rows in found.items()}


_BAD_BODY = schema_object(
    [],
    replicas={"type": "array", "items": {"type": ["string", "object"]}},
    pfns=_STRINGS,
    reason={"type": ["string", "null"]},
    force={"type": "boolean"},
)


@bp.post("/bad")
@bp.post("/bad/")
@doc(
    "Declare replicas bad, by PFN or by scope, name and rse (or rse_id); answers what was not declared",
    body=_BAD_BODY,
)
def declare_bad() -> Response:
    body = json_object()
    given = key(body, "replicas", list, None) or key(body, "pfns", list, None) or []
    reason = key(body, "reason", str, None)
    force = bool(key(body, "force", bool, False))
    as_pfns = bool(given) and isinstance(given[0], str)
    if any(isinstance(item, str) != as_pfns or not isinstance(item, str | dict) for item in given):
        raise InvalidType(
            "The replicas must be specified either as a list of PFNs (strings) or list of dicts"
        )
    with unit_of_work() as session:
        if as_pfns:
            by_rse_id = _by_pfn(session, given)
        else:
            by_rse_id = {}
            for item in given:
                scope, name, rse, rse_id = (item.get(field) for field in ("scope", "name", "rse", "rse_id"))
                if (
                    not isinstance(scope, str)
                    or not isinstance(name, str)
                    or not isinstance(rse or rse_id, str)
                ):
                    raise InvalidType(
                        "The replica dictionary must include scope and either rse (name) or rse_id"
                    )
                by_rse_id.setdefault(rse_id or get_rse_id(session, rse), []).append((scope, name))
        account = authorize(session, "declare_bad_file_replicas", rse_ids=sorted(by_rse_id))
        undeclared = _declare(session, by_rse_id, BadFilesStatus.BAD, reason, account, force=force)
    return json_response(undeclared, 201)


_BAD_DIDS_BODY = schema_object(
    ["dids", "rse"],
    dids=_DIDS,
    rse={"type": "string"},
    reason={"type": ["string", "null"]},
    expires_at={"type": ["string", "null"]},
)


@bp.post("/bad/dids")
@bp.post("/bad/dids/")
@doc(
    "Declare the replicas of files on one RSE bad; answers the list of those not declared",
    body=_BAD_DIDS_BODY,
)
def declare_bad_dids() -> Response:
    body = json_object()
    dids, rse = dict_list(body, "dids", []), key(body, "rse", str)
    reason = key(body, "reason", str, None)
    if _when(key(body, "expires_at", str, None), "expires_at") is not None:
        raise InputValidationError("a BAD declaration has no expires_at")
    keys = []
    for did in dids:
        if not isinstance(did.get("scope"), str) or not isinstance(did.get("name"), str):
            raise InvalidType("each DID needs a scope and a name")
        keys.append((did["scope"], did["name"]))
    with unit_of_work() as session:
        account = authorize(session, "add_bad_pfns", state="BAD", rse=rse)
        undeclared = replica_state.declare(session, rse, keys, BadFilesStatus.BAD, reason, account)
    return json_response(undeclared, 201)


_BAD_PFNS_BODY = schema_object(
    ["pfns", "state"],
    pfns=_STRINGS,
    state={"type": "string", "enum": list(PFN_STATES)},
    reason={"type": ["string", "null"]},
    expires_at={"type": ["string", "null"]},
)


@bp.post("/bad/pfns")
@bp.post("/bad/pfns/")
@doc(
    "Declare the replicas at PFNs BAD, SUSPICIOUS or TEMPORARY_UNAVAILABLE (the last until expires_at)",
    body=_BAD_PFNS_BODY,
)
def declare_bad_pfns() -> Response:
    body = json_object()
    pfns = key(body, "pfns", list)
    state = key(body, "state", str)  # one of PFN_STATES, by the body schema
    reason = key(body, "reason", str, None)
    expires_at = _when(key(body, "expires_at", str, None), "expires_at")
    with unit_of_work() as session:
        account = authorize(session, "add_bad_pfns", state=state)
        _declare(
            session, _by_pfn(session, pfns), BadFilesStatus[state], reason, account, expires_at=expires_at
        )
    return created()


_SUSPICIOUS_BODY = schema_object(["pfns"], pfns=_STRINGS, reason={"type": ["string", "null"]})


@bp.post("/suspicious")
@bp.post("/suspicious/")
@doc(
    "Report the replicas at PFNs as suspicious; answers what was not declared, per RSE", body=_SUSPICIOUS_BODY
)
def declare_suspicious() -> Response:
    body = json_object()
    pfns = key(body, "pfns", list, [])
    reason = key(body, "reason", str, None)
    with unit_of_work() as session:
        account = authorize(session, "declare_suspicious_file_replicas")
        found, unknown = replicas_at_pfns(session, pfns)
        by_rse_id = {rse_id: [(scope, name) for scope, name, _ in rows] for rse_id, rows in found.items()}
        undeclared = _declare(session, by_rse_id, BadFilesStatus.SUSPICIOUS, reason, account)
        if unknown:
            undeclared["unknown"] = [f"{pfn} Unknown replica" for pfn in unknown]
    return json_response(undeclared, 201)


@bp.get("/suspicious")
@bp.get("/suspicious/")
@doc(
    "Replicas reported suspicious more than nattempts times since younger_than (default: ten days)",
    query={
        "rse_expression": {"type": "string"},
        "younger_than": {"type": "string"},
        "nattempts": {"type": "integer"},
    },
)
def list_suspicious() -> Response:
    younger_than = _when(request.args.get("younger_than"), "younger_than")
    nattempts = query_int("nattempts")
    expression = request.args.get("rse_expression")
    with unit_of_work(read_only=True) as session:
        authorize(session, "read")
        rse_ids = rse_ids_for(session, expression) if expression else None
        found = bad_replica.suspicious(session, rse_ids, younger_than, nattempts)
    return json_response(found)


@bp.get("/bad/states")
@bp.get("/bad/states/")
@doc(
    "Bad-replica declarations in one state (default BAD), streamed; with list_pfns, their PFNs",
    query={
        "state": {"type": "string"},
        "rse": {"type": "string"},
        "younger_than": {"type": "string"},
        "older_than": {"type": "string"},
        "limit": {"type": "integer"},
        "list_pfns": {"type": "boolean"},
    },
)
def list_bad_states() -> Response:
    state = BadFilesStatus.parse(request.args.get("state") or "BAD")
    younger_than = _when(request.args.get("younger_than"), "younger_than")
    older_than = _when(request.args.get("older_than"), "older_than")
    limit = query_int("limit")
    if limit is not None and limit < 0:
        raise InputValidationError("limit must not be negative")
    list_pfns = request.args.get("list_pfns", "").lower() in ("true", "1")
    rse = request.args.get("rse")

    def rows(session: Session) -> Any:
        authorize(session, "read")
        rse_id = get_rse_id(session, rse) if rse else None
        found = bad_replica.list_states(session, state, rse_id, younger_than, older_than, limit)
        if not list_pfns:
            yield from found
            return
        builder = PFNBuilder(session)
        for row in found:
            described = builder.describe(
                {**row, "bytes": None, "md5": None, "adler32": None, "replicas": [row]}
            )
            yield from described["rses"].get(row["rse"], [])[:1]

    return stream(rows)


@bp.get("/bad/summary")
@bp.get("/bad/summary/")
@doc(
    "Bad-replica declarations counted by RSE, day, reason and state",
    query={
        "rse_expression": {"type": "string"},
        "from_date": {"type": "string"},
        "to_date": {"type": "string"},
    },
)
def bad_summary() -> Response:
    from_date = _when(request.args.get("from_date"), "from_date")
    to_date = _when(request.args.get("to_date"), "to_date")
    expression = request.args.get("rse_expression")

    def rows(session: Session) -> Any:
        authorize(session, "read")
        rse_ids = rse_ids_for(session, expression) if expression else None
        return bad_replica.summary(session, rse_ids, from_date, to_date)

    return stream(rows)


_TOMBSTONE_BODY = schema_object(
    ["replicas"],
    replicas={
        "type": "array",
        "items": schema_object(
            ["rse", "scope", "name"],
            rse={"type": "string"},
            scope={"type": "string"},
            name={"type": "string"},
        ),
    },
)


@bp.post("/tombstone")
@bp.post("/tombstone/")
@doc(
    "Mark unlocked replicas for immediate deletion by the reaper (admins, and owners of their scopes)",
    body=_TOMBSTONE_BODY,
)
def set_tombstone() -> Response:
    body = json_object()
    wanted = dict_list(body, "replicas", [])
    by_rse: dict[str, list[tuple[str, str]]] = {}
    for item in wanted:
        rse, scope, name = (item.get(field) for field in ("rse", "scope", "name"))
        if not (isinstance(rse, str) and isinstance(scope, str) and isinstance(name, str)):
            raise InvalidType("each replica needs rse, scope and name")
        by_rse.setdefault(rse, []).append((scope, name))
    with unit_of_work() as session:
        authorize(
            session,
            "set_tombstone",
            rses=sorted(by_rse),
            scopes=sorted({scope for keys in by_rse.values() for scope, _ in keys}),
        )
        for rse, keys in by_rse.items():
            replicas.set_tombstone(session, rse, keys)
    return created()


_QUARANTINE_BODY = schema_object(
    ["replicas"],
    replicas={
        "type": "array",
        "items": schema_object(
            ["path"], path={"type": "string"}, scope={"type": "string"}, name={"type": "string"}
        ),
    },
    rse={"type": ["string", "null"]},
    rse_id={"type": ["string", "null"]},
)


@bp.post("/quarantine")
@bp.post("/quarantine/")
@doc("Record files found on an RSE's storage that no replica names (dark data)", body=_QUARANTINE_BODY)
def quarantine() -> Response:
    body = json_object()
    found = dict_list(body, "replicas", [])
    rse, rse_id = key(body, "rse", str, None), key(body, "rse_id", str, None)
    if not found:
        return done()
    if (rse is None) == (rse_id is None):
        raise InputValidationError("Either RSE name or RSE id must be specified, but not both")
    for item in found:
        if not isinstance(item.get("path"), str) or not item["path"]:
            raise InputValidationError("Replica info must include path")
    with unit_of_work() as session:
        authorize(session, "quarantine_file_replicas")
        if rse_id is None:
            rse_id = get_rse_id(session, rse)
        else:
            _rse_names(session, [rse_id])  # an unknown id is RSENotFound
        replicas.quarantine(session, rse_id, found)
    return done()
