"""``/export`` and ``/import``: the catalogue's set-up (RSEs, distances, accounts) as one document."""

from __future__ import annotations

from flask import Blueprint, Response

from datamgmt.api.context import authorize, keep_storage_apart, unit_of_work
from datamgmt.api.openapi import doc, schema_object
from datamgmt.api.params import json_body, query_bool
from datamgmt.api.streaming import check_accept, created, json_response
from datamgmt.core import exchange

export_bp = Blueprint("export", __name__, url_prefix="/export")
import_bp = Blueprint("import", __name__, url_prefix="/import")

_DOCUMENT = schema_object(rses={"type": "object"}, distances={"type": "object"}, accounts={"type": "array"})


@export_bp.get("")
@export_bp.get("/")
@doc(
    "RSEs with attributes, protocols and limits, distances and accounts",
    query={"distance": {"type": "string"}},
)
def export() -> Response:
    check_accept("application/json")
    distance = query_bool("distance", default=True)
    with unit_of_work() as session:
        authorize(session, "export")
        return json_response(exchange.export_data(session, distance=distance))


@import_bp.post("")
@import_bp.post("/")
@doc("Create or update RSEs, distances and accounts from an exported document", body=_DOCUMENT)
def import_document() -> Response:
    document = json_body()
    with unit_of_work() as session:
        authorize(session, "import")
        exchange.import_data(session, document)
        rses = document.get("rses") if isinstance(document, dict) else None
        keep_storage_apart(session, list(rses) if isinstance(rses, dict) else [])
    return created()
