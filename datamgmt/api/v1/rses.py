"""``/rses``: storage endpoints, their attributes, protocols, limits, usage and distances."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import Blueprint, Response, current_app, request
from sqlalchemy.orm import Session

from datamgmt.api.context import authorize, keep_storage_apart, unit_of_work
from datamgmt.api.openapi import doc, schema_object
from datamgmt.api.params import json_object, key, query_bool
from datamgmt.api.streaming import created, done, dumps, json_response, rendered_stream, stream
from datamgmt.core import rse as rses
from datamgmt.core import rse_access, rse_distance
from datamgmt.core.expression import rse_names_for
from datamgmt.core.rse import RSEInfo
from datamgmt.core.validation import shown
from datamgmt.exceptions import InvalidPath, RSEProtocolNotSupported
from datamgmt.rse.lfn2pfn import DEFAULT_ALGORITHM
from datamgmt.rse.protocols import create_protocol, rucio_impl, select_protocol

bp = Blueprint("rses", __name__, url_prefix="/rses")

_FLAGS = ("deterministic", "volatile", "staging_area")
_ANY: dict[str, Any] = {}  # any JSON value


def rse_record(info: RSEInfo) -> dict[str, Any]:
    """An RSE row as Rucio lists it."""
    return {
        "rse": info.rse,
        "id": info.id,
        "rse_type": info.rse_type,
        "deterministic": info.deterministic,
        "volatile": info.volatile,
        "staging_area": info.staging_area,
        "availability": info.availability,
        "availability_read": info.availability_read,
        "availability_write": info.availability_write,
        "availability_delete": info.availability_delete,
        "created_at": info.created_at,
        "updated_at": info.updated_at,
        "deleted": False,
    }


def rse_detail(session: Session, name: str) -> dict[str, Any]:
    """An RSE with what clients need to reach it: protocols, lfn2pfn algorithm, domains."""
    detail = rse_access.rse_detail(session, name)
    attributes, protocols = detail.attributes, _for_rucio_clients(detail.protocols)
    return {
        **rse_record(detail.info),
        "lfn2pfn_algorithm": str(attributes.get("lfn2pfn_algorithm") or DEFAULT_ALGORITHM),
        "verify_checksum": attributes.get("verify_checksum", True) is not False,
        "credentials": None,
        "sign_url": attributes.get("sign_url"),
        "qos_class": attributes.get("qos_class"),
        "domain": ["lan", "wan"],
        "protocols": protocols,
    }


@bp.get("/")
@doc("List RSEs, optionally those an RSE expression selects", query={"expression": {"type": "string"}})
def list_rses() -> Response:
    expression = request.args.get("expression")
    if expression:
        return _list_rses_of(expression)

    def rows(session: Session) -> Any:
        authorize(session, "read")
        for info in rses.list_rses(session):
            yield rse_record(info)

    return stream(rows)


def _list_rses_of(expression: str) -> Response:
    """The RSEs an expression selects, as Rucio lists them (``{"rse": name}`` per line): names
    from the cached snapshot, each line rendered once per process, the answer sent whole."""
    with unit_of_work() as session:
        authorize(session, "read")
        names = rse_names_for(session, expression)
    return rendered_stream(map(_rse_line, names))


@lru_cache(maxsize=65536)
def _rse_line(name: str) -> str:
    """One line of an expression's listing: a JSON encoding per RSE per call cost more than
    the rest of the call (333 names: 0.6 ms)."""
    return f'{{"rse": {dumps(name)}}}\n'


@bp.get("/<rse>")
@doc("One RSE with its protocols")
def get_rse(rse: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        return json_response(rse_detail(session, rse))


_RSE_BODY = schema_object(
    deterministic={"type": "boolean"},
    volatile={"type": "boolean"},
    staging_area={"type": "boolean"},
    rse_type={"type": "string", "enum": ["DISK", "TAPE"]},
)


@bp.post("/<rse>")
@doc("Create an RSE", body=_RSE_BODY)
def add_rse(rse: str) -> Response:
    body = json_object(required=False)
    flags = {flag: bool(key(body, flag, bool, False)) for flag in _FLAGS if flag in body}
    with unit_of_work(one_write=True) as session:  # one statement on PostgreSQL (core/rse.py)
        authorize(session, "add_rse", rse=rse)
        rses.add_rse(session, rse, rse_type=key(body, "rse_type", str, None) or "DISK", **flags)
    return created()


@bp.put("/<rse>")
@doc("Update RSE flags and availability", body={"type": "object"})
def update_rse(rse: str) -> Response:
    body = json_object()
    with unit_of_work() as session:
        authorize(session, "update_rse", rse=rse)
        rses.update_rse(session, rse, body)
    return created()


@bp.delete("/<rse>")
@doc("Delete an RSE that holds no replicas")
def delete_rse(rse: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "del_rse", rse=rse)
        rses.delete_rse(session, rse)
    return done()


# --- attributes ------------------------------------------------------------------------------
@bp.get("/<rse>/attr/")
@doc("Attributes of an RSE, including the implicit <name>: true")
def list_attributes(rse: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        return json_response(rses.list_rse_attributes(session, rse))


@bp.post("/<rse>/attr/<key_name>")
@doc("Set an RSE attribute", body=schema_object(["value"], value=_ANY))
def add_attribute(rse: str, key_name: str) -> Response:
    value = key(json_object(), "value", (str, int, float, bool))
    with unit_of_work(one_write=True) as session:
        authorize(session, "add_rse_attribute", rse=rse, key=key_name)
        rses.add_rse_attribute(session, rse, key_name, value)
    return created()


@bp.delete("/<rse>/attr/<key_name>")
@doc("Remove an RSE attribute")
def delete_attribute(rse: str, key_name: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "del_rse_attribute", rse=rse, key=key_name)
        rses.del_rse_attribute(session, rse, key_name)
    return done()


# --- protocols -------------------------------------------------------------------------------
def _for_rucio_clients(protocols: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Protocols with an ``impl`` the stock client can import (our short names are aliases)."""
    return [{**protocol, "impl": rucio_impl(protocol)} for protocol in protocols]


@bp.get("/<rse>/protocols")
@doc("The RSE's protocols, as a JSON list (404 RSEProtocolNotSupported when it has none)")
def list_protocols(rse: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        protocols = _for_rucio_clients(rses.list_protocols(session, rse))
    if not protocols:
        raise RSEProtocolNotSupported(f"No protocols found for RSE {rse}")
    return json_response(protocols)


@bp.get("/<rse>/protocols/<scheme>")
@doc("The RSE as ``GET /rses/{rse}`` shows it, with only the protocols of one scheme")
def get_protocol(rse: str, scheme: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        detail = rse_detail(session, rse)
    detail["protocols"] = [p for p in detail["protocols"] if p["scheme"] == scheme]
    if not detail["protocols"]:
        raise RSEProtocolNotSupported(f"RSE {rse} has no protocol {shown(scheme)}")
    return json_response(detail)


_PROTOCOL_BODY = schema_object(
    hostname={"type": "string"},
    port={"type": ["integer", "null"]},
    prefix={"type": "string"},
    impl={"type": "string"},
    domains={"type": "object"},
    extended_attributes={"type": ["object", "null"]},
)


@bp.post("/<rse>/protocols/<scheme>")
@doc("Add an access protocol", body=_PROTOCOL_BODY)
def add_protocol(rse: str, scheme: str) -> Response:
    body = json_object()
    key(body, "domains", dict, None)
    # On a multi-VO instance the check after the write may refuse it, so it must stay undone.
    with unit_of_work(one_write=not current_app.config.get("MULTI_VO")) as session:
        authorize(session, "add_protocol", rse=rse)
        rses.add_protocol(session, rse, {**body, "scheme": scheme})
        keep_storage_apart(session, [rse])
    return created()


@bp.put("/<rse>/protocols/<scheme>")
@bp.put("/<rse>/protocols/<scheme>/<hostname>")
@bp.put("/<rse>/protocols/<scheme>/<hostname>/<int:port>")
@doc("Change protocols of a scheme (optionally of one host and port)", body=_PROTOCOL_BODY)
def update_protocol(rse: str, scheme: str, hostname: str | None = None, port: int | None = None) -> Response:
    body = json_object()
    with unit_of_work() as session:
        authorize(session, "update_protocol", rse=rse)
        rses.update_protocol(session, rse, scheme, hostname, port, body)
        keep_storage_apart(session, [rse])
    return done()


@bp.get("/<rse>/lfns2pfns")
@doc("PFNs for ``lfn=scope:name`` parameters, by the RSE's algorithm (``scheme``, ``domain``, ``operation``)")
def lfns2pfns(rse: str) -> Response:
    lfns = [_lfn(text) for text in request.args.getlist("lfn")]
    operation = request.args.get("operation", "write")
    domain = request.args.get("domain", "wan")
    scheme = request.args.get("scheme")
    with unit_of_work() as session:
        authorize(session, "read")
        detail = rse_detail(session, rse)
    record = select_protocol(detail["protocols"], operation, domain, [scheme] if scheme else None)
    protocol = create_protocol(record, lfn2pfn_algorithm=detail["lfn2pfn_algorithm"])
    return json_response(protocol.lfns2pfns(lfns))


def _lfn(text: str) -> dict[str, str]:
    scope, sep, name = text.partition(":")
    if not sep or not scope or not name:
        raise InvalidPath(f"LFN in invalid format: {shown(text)} (expected scope:name)")
    return {"scope": scope, "name": name}


@bp.delete("/<rse>/protocols/<scheme>")
@bp.delete("/<rse>/protocols/<scheme>/<hostname>")
@bp.delete("/<rse>/protocols/<scheme>/<hostname>/<int:port>")
@doc("Remove protocols of a scheme (optionally of one host and port)")
def delete_protocol(rse: str, scheme: str, hostname: str | None = None, port: int | None = None) -> Response:
    with unit_of_work() as session:
        authorize(session, "del_protocol", rse=rse)
        rses.del_protocol(session, rse, scheme, hostname, port)
    return done()


# --- limits and usage ------------------------------------------------------------------------
@bp.get("/<rse>/limits")
@doc("Limits of an RSE (such as MinFreeSpace)")
def get_limits(rse: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        return json_response(rses.get_rse_limits(session, rse))


@bp.put("/<rse>/limits")
@doc(
    "Set an RSE limit",
    body=schema_object(["name", "value"], name={"type": "string"}, value={"type": "integer"}),
)
def set_limit(rse: str) -> Response:
    body = json_object()
    name, value = key(body, "name", str), key(body, "value", int)
    with unit_of_work() as session:
        authorize(session, "set_rse_limits", rse=rse)
        rses.set_rse_limits(session, rse, name, value)
    return done()


@bp.delete("/<rse>/limits")
@doc("Remove an RSE limit", body=schema_object(["name"], name={"type": "string"}))
def delete_limit(rse: str) -> Response:
    name = key(json_object(), "name", str)
    with unit_of_work() as session:
        authorize(session, "delete_rse_limits", rse=rse)
        rses.delete_rse_limits(session, rse, name)
    return done()


@bp.get("/<rse>/usage")
@doc("Usage of an RSE per source", query={"source": {"type": "string"}, "per_account": {"type": "string"}})
def get_usage(rse: str) -> Response:
    source = request.args.get("source")
    per_account = query_bool("per_account")

    def rows(session: Session) -> Any:
        authorize(session, "read")
        usage = rses.get_rse_usage(session, rse, source, per_account=per_account)
        if not usage and source in (None, "rucio"):
            info = rses.get_rse(session, rse)
            usage = [
                {
                    "rse_id": info.id,
                    "rse": info.rse,
                    "source": "rucio",
                    "used": 0,
                    "free": None,
                    "total": 0,
                    "files": 0,
                    "updated_at": info.updated_at,
                }
            ]
        yield from usage

    return stream(rows)


_USAGE_BODY = schema_object(
    ["source", "used"],
    source={"type": "string"},
    used={"type": "integer"},
    free={"type": ["integer", "null"]},
    files={"type": ["integer", "null"]},
)


@bp.put("/<rse>/usage")
@doc("Record the usage of an RSE from a source", body=_USAGE_BODY)
def set_usage(rse: str) -> Response:
    body = json_object()
    source, used = key(body, "source", str), key(body, "used", int)
    free, files = key(body, "free", int, None), key(body, "files", int, None)
    with unit_of_work() as session:
        authorize(session, "set_rse_usage", rse=rse)
        rses.set_rse_usage(session, rse, source, used, free, files)
    return done()


# --- distances -------------------------------------------------------------------------------
_DISTANCE_BODY = schema_object(["distance"], distance={"type": "integer"})


def _distance(body: dict[str, Any]) -> int:
    value = body.get("distance", body.get("ranking"))
    distance: int = key({"distance": value}, "distance", int)
    return distance


@bp.get("/<source>/distances/<destination>")
@doc("Distance between two RSEs")
def get_distance(source: str, destination: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        return json_response(rse_distance.get_distances(session, source, destination))


@bp.post("/<source>/distances/<destination>")
@doc("Set the distance between two RSEs", body=_DISTANCE_BODY)
def add_distance(source: str, destination: str) -> Response:
    distance = _distance(json_object())
    with unit_of_work() as session:
        authorize(session, "add_distance", source=source, destination=destination)
        rse_distance.set_distance(session, source, destination, distance)
    return created()


@bp.put("/<source>/distances/<destination>")
@doc("Change the distance between two RSEs", body=_DISTANCE_BODY)
def update_distance(source: str, destination: str) -> Response:
    distance = _distance(json_object())
    with unit_of_work() as session:
        authorize(session, "update_distance", source=source, destination=destination)
        rse_distance.set_distance(session, source, destination, distance)
    return done()


@bp.delete("/<source>/distances/<destination>")
@doc("Remove the distance between two RSEs")
def delete_distance(source: str, destination: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "delete_distance", source=source, destination=destination)
        rse_distance.delete_distance(session, source, destination)
    return done()
