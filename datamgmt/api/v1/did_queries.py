"""``/dids`` look-ups that Rucio 41 adds to the basic ones in :mod:`datamgmt.api.v1.dids`:
by GUID, a scope's tree, new DIDs, files and metadata of many DIDs, a DID's status and its
content history."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.openapi import doc, schema_object
from datamgmt.api.params import json_object, key, query_bool
from datamgmt.api.streaming import json_response, stream
from datamgmt.core import did as dids
from datamgmt.core import did_listing

bp = Blueprint("did_queries", __name__, url_prefix="/dids")

_DIDS = {
    "type": "array",
    "items": schema_object(["scope", "name"], scope={"type": "string"}, name={"type": "string"}),
}


@bp.get("/<guid>/guid")
@doc("The collections that hold the file with a GUID")
def by_guid(guid: str) -> Response:
    def rows(session: Session) -> Any:
        authorize(session, "read")
        yield from did_listing.datasets_by_guid(session, guid)

    return stream(rows)


@bp.get("/<scope>/")
@doc(
    "A scope's top-level DIDs, or one DID and what it holds",
    query={"name": {"type": "string"}, "recursive": {"type": "string"}},
)
def scope_tree(scope: str) -> Response:
    name, recursive = request.args.get("name"), query_bool("recursive")

    def rows(session: Session) -> Any:
        authorize(session, "read")
        yield from did_listing.scope_list(session, scope, name, recursive)

    return stream(rows)


@bp.get("/new")
@doc("DIDs not yet seen by the transmogrifier", query={"type": {"type": "string"}})
def new_dids() -> Response:
    did_type = request.args.get("type")

    def rows(session: Session) -> Any:
        authorize(session, "read")
        yield from did_listing.list_new_dids(session, did_type)

    return stream(rows)


@bp.post("/bulkfiles")
@doc("The files of many DIDs, each with its parent", body=schema_object(["dids"], dids=_DIDS))
def bulk_files() -> Response:
    keys = did_listing.did_keys(key(json_object(), "dids", list, []))

    def rows(session: Session) -> Any:
        authorize(session, "read")
        yield from did_listing.bulk_list_files(session, keys)

    return stream(rows)


@bp.post("/bulkmeta")
@doc(
    "The metadata of many DIDs",
    body=schema_object(
        ["dids"],
        dids=_DIDS,
        inherit={"type": "boolean"},
        plugin={"type": "string", "enum": ["DID_COLUMN", "JSON", "ALL"]},
    ),
)
def bulk_meta() -> Response:
    body = json_object()
    keys = did_listing.did_keys(key(body, "dids", list))
    inherit, plugin = bool(key(body, "inherit", bool, False)), key(body, "plugin", str, "DID_COLUMN")

    def rows(session: Session) -> Any:
        authorize(session, "read")
        yield from did_listing.metadata_bulk(session, keys, inherit=inherit, plugin=plugin or "DID_COLUMN")

    return stream(rows)


@bp.get("/<scope>/<path:name>/status")
@doc("One DID, as GET /dids/<scope>/<name> answers it")
def status(scope: str, name: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        return json_response(dids.get_did(session, scope, name))


@bp.get("/<scope>/<path:name>/dids/history")
@doc("What a collection held once and holds no more")
def content_history(scope: str, name: str) -> Response:
    def rows(session: Session) -> Any:
        authorize(session, "read")
        yield from did_listing.list_content_history(session, scope, name)

    return stream(rows)
