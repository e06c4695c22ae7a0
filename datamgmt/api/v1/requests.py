"""``/requests``: transfer requests and their ranked sources, for operators."""

from __future__ import annotations

from flask import Blueprint, Response

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.openapi import doc
from datamgmt.api.streaming import json_response
from datamgmt.core import request as transfers

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
