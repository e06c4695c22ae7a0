"""``/requests``: transfer requests and their ranked sources, for operators."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.openapi import doc
from datamgmt.api.streaming import json_response, stream
from datamgmt.core import request as transfers
from datamgmt.core import rse as rses
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


@bp.get("/list")
@doc("Requests from ``src_rse`` to ``dst_rse`` (or ``src_site`` to ``dst_site``) in ``request_states``",
     query={name: {"type": "string"} for name in ("src_rse", "dst_rse", "src_site", "dst_site", "request_states")})
def list_requests() -> Response:
    args = request.args
    states = _states(args.get("request_states"))
    by_site = args.get("src_site") or args.get("dst_site")
    ends = ("src_site", "dst_site") if by_site else ("src_rse", "dst_rse")
    missing = [end for end in ends if not args.get(end)]
    if missing:
        raise InputValidationError(f"{missing[0]} is missing")

    def rows(session: Session) -> Any:
        authorize(session, "list_requests")
        if by_site:
            sources, destinations = (rses.rse_ids_with_attribute(session, "site", args[end]) for end in ends)
        else:
            sources, destinations = ([rses.get_rse_id(session, args[end])] for end in ends)
        return transfers.list_requests(session, sources, destinations, states)

    return stream(rows)


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
