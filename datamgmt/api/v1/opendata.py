"""``/opendata`` and ``/opendata/public``: Rucio's open-data catalogue over our publishing layer
(:mod:`datamgmt.core.opendata`).  The public routes need no token and see PUBLIC entries only."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from datamgmt.api.auth import public
from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.openapi import doc, schema_object
from datamgmt.api.params import json_object, key, query_int
from datamgmt.api.streaming import check_accept, json_response
from datamgmt.api.v1.publishing import base_url, withdraw_orphan
from datamgmt.core import opendata

bp = Blueprint("opendata", __name__, url_prefix="/opendata")
JSON = "application/json"
_LIST_QUERY = {"state": {"type": "string"}, "limit": {"type": "integer"}, "offset": {"type": "integer"}}
_GET_QUERY = {flag: {"type": "string", "enum": ["0", "1"]} for flag in ("files", "meta", "doi", "record_id")}


def _flag(name: str, default: str) -> bool:
    return request.args.get(name, default).lower() == "1"


def _listing(state: str | None, authenticated: bool = True) -> Response:
    check_accept(JSON)
    limit, offset = query_int("limit"), query_int("offset")
    with unit_of_work() as session:
        if authenticated:
            authorize(session, "read")
        return json_response(opendata.list_entries(session, state, limit, offset))


def _one(scope: str, name: str, state: str | None, authenticated: bool = True) -> Response:
    check_accept(JSON)
    with unit_of_work() as session:
        if authenticated:
            authorize(session, "read")
        return json_response(
            opendata.get_entry(
                session,
                scope,
                name,
                state,
                files=_flag("files", "0"),
                meta=_flag("meta", "0"),
                doi=_flag("doi", "1"),
                record_id=_flag("record_id", "1"),
            )
        )


@bp.get("/dids")
@doc("Open-data entries in every state", query=_LIST_QUERY)
def list_entries() -> Response:
    return _listing(request.args.get("state"))


@bp.get("/public/dids")
@public
@doc("Public open-data entries (no token)", query=_LIST_QUERY)
def list_public() -> Response:
    return _listing("PUBLIC", authenticated=False)


@bp.get("/dids/<scope>/<path:name>")
@doc("One open-data entry", query={"state": {"type": "string"}, **_GET_QUERY})
def get_entry(scope: str, name: str) -> Response:
    return _one(scope, name, request.args.get("state"))


@bp.get("/public/dids/<scope>/<path:name>")
@public
@doc("One public open-data entry (no token)", query=_GET_QUERY)
def get_public(scope: str, name: str) -> Response:
    return _one(scope, name, "PUBLIC", authenticated=False)


@bp.post("/dids/<scope>/<path:name>")
@doc("Propose a dataset or container as open data (a DRAFT)")
def add(scope: str, name: str) -> Response:
    with unit_of_work() as session:
        account = authorize(session, "publish_did", scope=scope)
        opendata.add_draft(session, scope, name, account)
    return Response(status=201, mimetype=JSON)


@bp.put("/dids/<scope>/<path:name>")
@doc(
    "Publish, suspend, or update the metadata of an open-data entry",
    body=schema_object(
        state={"type": "string", "enum": ["draft", "public", "suspended", "DRAFT", "PUBLIC", "SUSPENDED"]},
        meta={"type": "object"},
        doi={"type": "string"},
        record_id={"type": "integer"},
    ),
)
def update(scope: str, name: str) -> Response:
    body = json_object()
    url = base_url()
    result: dict[str, Any] | None = None
    try:
        with unit_of_work() as session:
            account = authorize(session, "publish_did", scope=scope)
            result = opendata.update_entry(
                session,
                scope,
                name,
                account,
                url,
                state=key(body, "state", str, None),
                meta=key(body, "meta", dict, None),
                doi=body.get("doi"),
                record_id=body.get("record_id"),
            )
    except Exception:
        if result is not None and result.get("doi"):
            withdraw_orphan({"pid": result["doi"], "pid_service": result["pid_service"]}, url)
        raise
    return json_response(result)


@bp.delete("/dids/<scope>/<path:name>")
@doc("Drop a DRAFT open-data entry")
def delete(scope: str, name: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "publish_did", scope=scope)
        opendata.delete_draft(session, scope, name)
    return Response(status=204, mimetype=JSON)
