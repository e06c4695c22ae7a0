"""``/dids``: datasets and containers, their contents, status, metadata and search.

Names may contain slashes, so routes use a ``path`` converter for the name and the
fixed suffixes (``/dids``, ``/files``, ``/meta``, ...) are matched before the bare DID.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.openapi import doc, schema_object
from datamgmt.api.params import dict_list, json_body, json_object, key, query_bool, query_int
from datamgmt.api.streaming import created, done, json_response, stream
from datamgmt.core import did as dids
from datamgmt.core import did_content, metadata, metadata_filter, validation
from datamgmt.core.account import is_admin
from datamgmt.exceptions import MalformedRequest

bp = Blueprint("dids", __name__, url_prefix="/dids")

_DID = schema_object(["scope", "name"], scope={"type": "string"}, name={"type": "string"})
_DID_LIST = {"type": "array", "items": _DID}
_ANY: dict[str, Any] = {}


def _scopes(items: list[dict[str, Any]]) -> list[Any]:
    return sorted({str(item.get("scope")) for item in items})


# --- search ----------------------------------------------------------------------------------
@bp.get("/<scope>/dids/search")
@doc(
    "Search the DIDs of a scope with Rucio's filter dialect",
    query={
        "type": {"type": "string"},
        "filters": {"type": "string"},
        "long": {"type": "string"},
        "recursive": {"type": "string"},
        "limit": {"type": "integer"},
    },
)
def search(scope: str) -> Response:
    did_type = request.args.get("type", "collection")
    text = request.args.get("filters")
    long, limit = query_bool("long"), query_int("limit")
    query_bool("recursive")

    def rows(session: Session) -> Any:
        authorize(session, "read")
        groups = metadata_filter.parse_rest_filters(text) if text else None
        for found in metadata_filter.list_dids(session, scope, groups, did_type, limit):
            yield found if long else found["name"]

    return stream(rows)


# --- creation --------------------------------------------------------------------------------
def _collection(scope: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    statuses = key(body, "statuses", dict, None) or {}
    return {
        "scope": scope,
        "name": name,
        "type": key(body, "type", str, "DATASET"),
        "lifetime": key(body, "lifetime", int, None),
        "monotonic": bool(statuses.get("monotonic", False)),
        "open": bool(statuses.get("open", True)),
    }


@bp.post("/", strict_slashes=False)  # /dids and /dids/ alike: never a redirect answering a POST
@doc("Register many datasets and containers", body={"type": "array", "items": _DID})
def add_dids() -> Response:
    items = json_body()
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise MalformedRequest("the body must be a list of DID objects")
    with unit_of_work() as session:
        account = authorize(session, "add_dids", scopes=_scopes(items))
        dids.add_collections(
            session, [_collection(item.get("scope"), item.get("name"), item) for item in items], account
        )
        for item in items:
            meta = key(item, "meta", dict, None)
            if meta:
                metadata.set_metadata_bulk(session, item["scope"], item["name"], meta)
    return created()


_ADD_BODY = schema_object(
    type={"type": "string", "enum": ["DATASET", "CONTAINER"]},
    lifetime={"type": ["integer", "null"]},
    statuses={"type": "object"},
    meta={"type": "object"},
)


@bp.post("/attachments")
@doc(
    "Attach DIDs to many collections",
    body=schema_object(["attachments"], attachments={"type": "array", "items": {"type": "object"}}),
)
def attach_many() -> Response:
    attachments = dict_list(json_object(), "attachments")
    with unit_of_work() as session:
        authorize(session, "attach_dids", scopes=_scopes(attachments))
        for attachment in attachments:
            children = dict_list(attachment, "dids")
            scope, name = (
                validation.scope_name(attachment.get("scope")),
                validation.did_name(attachment.get("name")),
            )
            did_content.attach(session, scope, name, children)
    return created()


# --- contents, files, parents ----------------------------------------------------------------
@bp.get("/<scope>/<path:name>/dids")
@doc("Direct content of a collection")
def list_content(scope: str, name: str) -> Response:
    def rows(session: Session) -> Any:
        authorize(session, "read")
        yield from did_content.list_content(session, scope, name)

    return stream(rows)


@bp.post("/<scope>/<path:name>/dids")
@doc("Attach DIDs to a collection", body=schema_object(["dids"], dids=_DID_LIST))
def attach(scope: str, name: str) -> Response:
    children = dict_list(json_object(), "dids")
    with unit_of_work() as session:
        authorize(session, "attach_dids", scope=scope)
        did_content.attach(session, scope, name, children)
    return created()


@bp.delete("/<scope>/<path:name>/dids")
@doc("Detach DIDs from a collection", body=schema_object(["dids"], dids=_DID_LIST))
def detach(scope: str, name: str) -> Response:
    children = dict_list(json_object(), "dids")
    with unit_of_work() as session:
        authorize(session, "detach_dids", scope=scope)
        did_content.detach(session, scope, name, children)
    return done()


@bp.get("/<scope>/<path:name>/files")
@doc("Every file below a DID")
def list_files(scope: str, name: str) -> Response:
    def rows(session: Session) -> Any:
        authorize(session, "read")
        for found in did_content.list_files(session, scope, name):
            guid = found["guid"]
            yield {**found, "guid": guid.upper() if guid else None}

    return stream(rows)


@bp.get("/<scope>/<path:name>/parents")
@doc("Collections that hold a DID directly")
def list_parents(scope: str, name: str) -> Response:
    def rows(session: Session) -> Any:
        authorize(session, "read")
        yield from did_content.list_parents(session, scope, name)

    return stream(rows)


# --- status ----------------------------------------------------------------------------------
@bp.put("/<scope>/<path:name>/status")
@doc("Close (or, as an admin, reopen) a collection", body=schema_object(["open"], open={"type": "boolean"}))
def set_status(scope: str, name: str) -> Response:
    is_open = key(json_object(), "open", bool)
    with unit_of_work() as session:
        account = authorize(session, "set_status", scope=scope)
        dids.set_status(session, scope, name, bool(is_open), is_admin=is_admin(session, account))
    return done()


# --- metadata --------------------------------------------------------------------------------
@bp.get("/<scope>/<path:name>/meta")
@doc("Metadata of a DID", query={"plugin": {"type": "string", "enum": ["DID_COLUMN", "JSON", "ALL"]}})
def get_metadata(scope: str, name: str) -> Response:
    plugin = request.args.get("plugin", "ALL")
    # Rucio keeps project, datatype, run_number... as DID columns; we keep them as key-values,
    # so the client's DID_COLUMN view includes the key-values to show the same fields.
    if plugin.upper() == "DID_COLUMN":
        plugin = "ALL"
    with unit_of_work() as session:
        authorize(session, "read")
        return json_response(metadata.get_metadata(session, scope, name, plugin))


@bp.post("/<scope>/<path:name>/meta")
@doc("Set several metadata keys", body=schema_object(["meta"], meta={"type": "object"}))
def set_metadata_bulk(scope: str, name: str) -> Response:
    meta = key(json_object(), "meta", dict)
    with unit_of_work() as session:
        authorize(session, "set_metadata", scope=scope)
        metadata.set_metadata_bulk(session, scope, name, meta or {})
    return created()


@bp.post("/<scope>/<path:name>/meta/<key_name>")
@doc("Set one metadata key", body=schema_object(["value"], value=_ANY, recursive={"type": "boolean"}))
def set_metadata(scope: str, name: str, key_name: str) -> Response:
    value = key(json_object(), "value")
    with unit_of_work() as session:
        authorize(session, "set_metadata", scope=scope)
        metadata.set_metadata(session, scope, name, key_name, value)
    return created()


@bp.delete("/<scope>/<path:name>/meta")
@doc("Remove a metadata key", query={"key": {"type": "string"}})
def delete_metadata(scope: str, name: str) -> Response:
    key_name = request.args.get("key")
    if not key_name:
        raise MalformedRequest("the key to delete must be given as ?key=")
    with unit_of_work() as session:
        authorize(session, "delete_metadata", scope=scope)
        metadata.delete_metadata(session, scope, name, key_name)
    return done()


# --- the DID itself --------------------------------------------------------------------------
@bp.get("/<scope>/<path:name>")
@doc("One DID", query={"dynamic_depth": {"type": "string"}, "dynamic": {"type": "string"}})
def get_did(scope: str, name: str) -> Response:
    dynamic = bool(request.args.get("dynamic_depth")) or query_bool("dynamic")
    with unit_of_work() as session:
        authorize(session, "read")
        return json_response(dids.get_did(session, scope, name, dynamic=dynamic))


@bp.post("/<scope>/<path:name>")
@doc("Register a dataset or container", body=_ADD_BODY)
def add_did(scope: str, name: str) -> Response:
    body = json_object(required=False)
    meta = key(body, "meta", dict, None)
    with unit_of_work() as session:
        account = authorize(session, "add_did", scope=scope)
        dids.add_collections(session, [_collection(scope, name, body)], account)
        if meta:
            metadata.set_metadata_bulk(session, scope, name, meta)
    return created()
