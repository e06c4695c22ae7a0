"""``/requests``: transfer requests and their ranked sources, for operators."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.openapi import doc, schema_object
from datamgmt.api.params import json_object, key, query_bool
from datamgmt.api.streaming import json_response, stream, stream_items
from datamgmt.core import request as transfers
from datamgmt.core import request_history as history
from datamgmt.core import rse as rses
from datamgmt.core import transfer_limit as limits
from datamgmt.core.db.constants import RequestState
from datamgmt.exceptions import InputValidationError

bp = Blueprint("requests", __name__, url_prefix="/requests")


@bp.get("/<request_id>")
@doc("One transfer request")
def get_request(request_id: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "list_requests", request_id=request_id)
        return json_response(transfers.get_request(session, request_id))


@bp.get("/<request_id>/sources")
@doc("The candidate sources of a transfer request, best first")
def list_sources(request_id: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "list_requests", request_id=request_id)
        transfers.get_request(session, request_id)
        return json_response(transfers.list_sources(session, request_id))


_ENDS_QUERY = {
    name: {"type": "string"} for name in ("src_rse", "dst_rse", "src_site", "dst_site", "request_states")
}


@bp.get("/list")
@doc(
    "Requests from ``src_rse`` to ``dst_rse`` (or ``src_site`` to ``dst_site``) in ``request_states``",
    query=_ENDS_QUERY,
)
def list_requests() -> Response:
    return _between("list_requests", transfers.list_requests)


@bp.get("/history/list")
@doc(
    "Past transfer attempts from ``src_rse`` to ``dst_rse`` (or between sites) ending in ``request_states``",
    query={**_ENDS_QUERY, "offset": {"type": "integer"}, "limit": {"type": "integer"}},
)
def list_requests_history() -> Response:
    offset, limit = _non_negative("offset", 0), _non_negative("limit", 100)
    return _between(
        "list_requests_history",
        lambda s, src, dst, states: history.list_history(s, src, dst, states, offset, limit),
    )


def _non_negative(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise InputValidationError(f"{name} must be a non-negative integer")
    return int(raw)


def _between(action: str, listing: Any) -> Response:
    """Stream ``listing(session, source ids, destination ids, states)`` for the query's RSEs or sites."""
    args = request.args
    states = _states(args.get("request_states"))
    by_site = args.get("src_site") or args.get("dst_site")
    ends = ("src_site", "dst_site") if by_site else ("src_rse", "dst_rse")
    missing = [end for end in ends if not args.get(end)]
    if missing:
        raise InputValidationError(f"{missing[0]} is missing")

    def rows(session: Session) -> Any:
        authorize(session, action)
        if by_site:
            sources, destinations = (rses.rse_ids_with_attribute(session, "site", args[end]) for end in ends)
        else:
            sources, destinations = ([rses.get_rse_id(session, args[end])] for end in ends)
        return listing(session, sources, destinations, states)

    return stream(rows)


@bp.get("/history/<scope>/<path:name>/<rse>")
@doc("The newest past transfer attempt of a file to an RSE")
def request_history_by_did(scope: str, name: str, rse: str) -> Response:
    with unit_of_work(read_only=True) as session:
        authorize(session, "get_request_history_by_did")
        return json_response(history.history_by_did(session, scope, name, rses.get_rse_id(session, rse)))


@bp.get("/metrics")
@doc(
    "Queued, done and failed transfers (files and bytes, 1 h and 6 h) per source and destination",
    query={
        name: {"type": "string"}
        for name in ("dst_rse", "src_rse", "activity", "group_by_rse_attribute", "format")
    },
)
def request_metrics() -> Response:
    args = request.args
    with unit_of_work(read_only=True) as session:
        authorize(session, "get_request_metrics")
        ends = {
            end: rses.get_rse_id(session, args[end]) if args.get(end) else None
            for end in ("dst_rse", "src_rse")
        }
        metrics = history.request_metrics(
            session,
            dest_rse_id=ends["dst_rse"],
            src_rse_id=ends["src_rse"],
            activity=args.get("activity"),
            group_by_rse_attribute=args.get("group_by_rse_attribute"),
        )
    if args.get("format") == "panda":
        return json_response(metrics)
    return stream_items(metrics.values())


@bp.get("/transfer_limits")
@doc("The transfer limits")
def list_transfer_limits() -> Response:
    with unit_of_work(read_only=True) as session:
        authorize(session, "list_transfer_limits")
        return stream_items(limits.list_transfer_limits(session))


_COUNT = {"type": "integer", "minimum": 0}
_LIMIT_KEY = {
    "rse_expression": {"type": "string"},
    "activity": {"type": "string"},
    "direction": {"type": "string"},
}
_LIMIT_BODY = schema_object(
    ["rse_expression"],
    **_LIMIT_KEY,
    max_transfers=_COUNT,
    volume=_COUNT,
    deadline=_COUNT,
    transfers=_COUNT,
    waitings=_COUNT,
    strategy={"type": "string"},
)


@bp.put("/transfer_limits")
@doc("Set a transfer limit on the RSEs of an expression", body=_LIMIT_BODY)
def set_transfer_limit() -> Response:
    body = json_object()
    values = {
        name: body[name]
        for name in ("max_transfers", "volume", "deadline", "strategy", "transfers", "waitings")
        if name in body
    }
    with unit_of_work() as session:
        authorize(session, "set_transfer_limit", rse_expression=body.get("rse_expression"))
        limits.set_transfer_limit(
            session,
            key(body, "rse_expression", str),
            key(body, "activity", str, None),
            key(body, "direction", str, "DESTINATION"),
            **values,
        )
    return Response("", status=201)


@bp.delete("/transfer_limits")
@doc("Delete a transfer limit", body=schema_object(["rse_expression"], **_LIMIT_KEY))
def delete_transfer_limit() -> Response:
    body = json_object()
    with unit_of_work() as session:
        authorize(session, "delete_transfer_limit", rse_expression=body.get("rse_expression"))
        limits.delete_transfer_limit(
            session,
            key(body, "rse_expression", str),
            key(body, "activity", str, None),
            key(body, "direction", str, "DESTINATION"),
        )
    return Response("", status=200)


def _states(text: str | None) -> list[RequestState]:
    if not text:
        raise InputValidationError("request_states is missing (comma-separated, e.g. Q,S)")
    return [RequestState.parse(code.strip()) for code in text.split(",")]


@bp.get("/<scope>/<path:name>/<rse>")
@doc("The newest transfer request of a file to an RSE")
def request_by_did(scope: str, name: str, rse: str) -> Response:
    with unit_of_work(read_only=True) as session:
        authorize(session, "list_requests")
        return json_response(transfers.request_by_did(session, scope, name, rses.get_rse_id(session, rse)))


# --- datamgmt's operator views (not in Rucio): what `rule show` and `transfers list` print -----
@bp.get("/history")
@doc(
    "Newest transfer attempts, optionally of one rule, to or from one RSE, or failed only (datamgmt)",
    query={
        "rule_id": {"type": "string"},
        "rse": {"type": "string"},
        "failed": {"type": "boolean"},
        "limit": {"type": "integer"},
    },
)
def list_attempts() -> Response:
    rule_id, rse = request.args.get("rule_id"), request.args.get("rse")
    failed, limit = query_bool("failed"), min(_non_negative("limit", 100), 10_000)
    with unit_of_work(read_only=True) as session:
        if rule_id:
            authorize(session, "list_rule_transfers", rule_id=rule_id)
        else:
            authorize(session, "list_requests_history")
        rse_id = rses.get_rse_id(session, rse) if rse else None
        rows = history.list_attempts(session, rule_id=rule_id, rse_id=rse_id, failed=failed, limit=limit)
    return stream_items(rows)


@bp.get("/locks")
@doc(
    "Per lock of a rule: transfer attempts, last error, live request state and next retry (datamgmt)",
    query={"rule_id": {"type": "string"}},
)
def lock_transfers() -> Response:
    rule_id = request.args.get("rule_id")
    if not rule_id:
        raise InputValidationError("rule_id is missing")
    with unit_of_work(read_only=True) as session:
        authorize(session, "list_rule_transfers", rule_id=rule_id)
        summary = history.lock_transfers(session, rule_id)
        names = rses.rse_names_by_id(session, sorted({rse_id for _, _, rse_id in summary}))
    return stream_items(
        {"scope": scope, "name": name, "rse": names.get(rse_id, rse_id), **entry}
        for (scope, name, rse_id), entry in sorted(summary.items())
    )
