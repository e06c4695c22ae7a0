"""``/replicas``: register, change the state of, forget and list replicas (with PFNs).

Declaring them bad or suspicious lives in :mod:`datamgmt.api.v1.bad_replicas`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.metalink import METALINK, metalink
from datamgmt.api.openapi import doc, schema_object
from datamgmt.api.params import dict_list, json_object, key
from datamgmt.api.pfns import PFNBuilder
from datamgmt.api.streaming import JSON_STREAM, created, done, stream
from datamgmt.core import replica as replicas
from datamgmt.core import replica_state
from datamgmt.core.expression import rse_ids_for
from datamgmt.exceptions import InputValidationError

bp = Blueprint("replicas", __name__, url_prefix="/replicas")

_FILE = schema_object(
    ["scope", "name", "bytes"],
    scope={"type": "string"},
    name={"type": "string"},
    bytes={"type": "integer"},
    adler32={"type": "string"},
    md5={"type": "string"},
    state={"type": "string"},
    meta={"type": "object"},
)
_REPLICAS_BODY = schema_object(
    ["rse", "files"],
    rse={"type": "string"},
    files={"type": "array", "items": _FILE},
    ignore_availability={"type": "boolean"},
)
_STATES_BODY = schema_object(
    ["rse", "files"],
    rse={"type": "string"},
    files={
        "type": "array",
        "items": schema_object(
            ["scope", "name", "state"],
            scope={"type": "string"},
            name={"type": "string"},
            state={"type": "string"},
        ),
    },
)


def _files(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The files of a body, with Rucio's ``meta.guid`` lifted to ``guid``."""
    files = dict_list(body, "files")
    result = []
    for item in files:
        meta = item.get("meta")
        guid = meta.get("guid") if isinstance(meta, dict) else None
        result.append({**item, "guid": item.get("guid") or guid})
    return result


def _scopes(files: list[dict[str, Any]]) -> list[str]:
    return sorted({str(item.get("scope")) for item in files})


@bp.post("")
@bp.post("/")
@doc("Register replicas of files on one RSE (creating the file DIDs)", body=_REPLICAS_BODY)
def add_replicas() -> Response:
    body = json_object()
    rse, files = key(body, "rse", str), _files(body)
    with unit_of_work() as session:
        account = authorize(session, "add_replicas", scopes=_scopes(files), rse=rse)
        replicas.add_replicas(session, rse, files, account)
    return created()


@bp.put("")
@bp.put("/")
@doc("Change the state of replicas on one RSE", body=_STATES_BODY)
def update_replicas() -> Response:
    body = json_object()
    rse, files = key(body, "rse", str), dict_list(body, "files")
    with unit_of_work() as session:
        authorize(session, "update_replicas_states", scopes=_scopes(files), rse=rse)
        replica_state.set_replica_states(session, rse, files)
    return done()


_DELETE_BODY = schema_object(
    ["rse", "files"],
    rse={"type": "string"},
    ignore_availability={"type": "boolean"},
    files={
        "type": "array",
        "items": schema_object(["scope", "name"], scope={"type": "string"}, name={"type": "string"}),
    },
)


@bp.delete("")
@bp.delete("/")
@doc("Forget unlocked replicas on one RSE (catalogue only; admins)", body=_DELETE_BODY)
def delete_replicas() -> Response:
    body = json_object()
    rse, files = key(body, "rse", str), dict_list(body, "files")
    ignore_availability = bool(key(body, "ignore_availability", bool, False))
    keys = []
    for item in files:
        if not isinstance(item.get("scope"), str) or not isinstance(item.get("name"), str):
            raise InputValidationError("each file needs a scope and a name")
        keys.append((item["scope"], item["name"]))
    with unit_of_work() as session:
        authorize(session, "delete_replicas", rse=rse)
        replicas.delete_replicas(session, rse, keys, ignore_availability)
    return done()


_LIST_BODY = schema_object(
    ["dids"],
    dids={
        "type": "array",
        "items": schema_object(["scope", "name"], scope={"type": "string"}, name={"type": "string"}),
    },
    schemes={"type": ["array", "null"], "items": {"type": "string"}},
    domain={"type": ["string", "null"]},
    rse_expression={"type": ["string", "null"]},
    all_states={"type": "boolean"},
    resolve_parents={"type": "boolean"},
)


@bp.post("/list")
@bp.post("/list/")
@doc("Replicas of files and collections, with PFNs by protocol and domain", body=_LIST_BODY)
def list_replicas() -> Response:
    body = json_object()
    dids = dict_list(body, "dids")
    schemes = key(body, "schemes", list, None)
    if schemes is not None and not all(isinstance(scheme, str) for scheme in schemes):
        raise InputValidationError("schemes must be a list of strings")
    domain = key(body, "domain", str, None) or "wan"
    if domain not in ("wan", "lan"):
        raise InputValidationError("domain must be wan or lan")
    expression = key(body, "rse_expression", str, None)
    all_states = bool(key(body, "all_states", bool, False))
    resolve_parents = bool(key(body, "resolve_parents", bool, False))

    def rows(session: Session) -> Any:
        authorize(session, "read")
        rse_ids = rse_ids_for(session, expression) if expression else None
        builder = PFNBuilder(session, domain, schemes)
        for entry in replicas.list_replicas(session, dids, rse_ids, all_states):
            described = builder.describe(entry)
            if resolve_parents:
                described["parents"] = entry["parents"]
            yield described

    return _listing(rows)


def _listing(rows: Callable[[Session], Any]) -> Response:
    """A replica listing as a JSON stream, or as Metalink 4 when the client prefers it (``rucio download``)."""
    if request.accept_mimetypes.best_match([JSON_STREAM, METALINK], JSON_STREAM) == METALINK:
        return stream(rows, METALINK, metalink)
    return stream(rows)


@bp.get("/<scope>/<path:name>")
@doc("Replicas of one DID, with PFNs", query={"schemes": {"type": "string"}, "domain": {"type": "string"}})
def list_did_replicas(scope: str, name: str) -> Response:
    schemes = request.args.getlist("schemes") or None
    domain = request.args.get("domain") or "wan"
    if domain not in ("wan", "lan"):
        raise InputValidationError("domain must be wan or lan")

    def rows(session: Session) -> Any:
        authorize(session, "read")
        builder = PFNBuilder(session, domain, schemes)
        for entry in replicas.list_replicas(session, [{"scope": scope, "name": name}]):
            yield builder.describe(entry)

    return _listing(rows)
