"""``/meta_conventions``: metadata keys, the DIDs they apply to and the values they allow."""

from __future__ import annotations

from flask import Blueprint, Response

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.openapi import doc, schema_object
from datamgmt.api.params import json_object, key
from datamgmt.api.streaming import check_accept, created, json_response
from datamgmt.core import meta_convention

bp = Blueprint("meta_conventions", __name__, url_prefix="/meta_conventions")
JSON = "application/json"

_KEY = schema_object(
    key_type={
        "type": ["string", "null"],
        "enum": [*meta_convention.KEY_TYPES, "F", "D", "C", None],
        "x-rucio-error": "UnsupportedKeyType",
    },
    value_type={"type": ["string", "null"]},
    value_regexp={"type": ["string", "null"]},
)


@bp.get("/")
@doc("Every metadata key with a convention")
def list_keys() -> Response:
    check_accept(JSON)
    with unit_of_work() as session:
        authorize(session, "read")
        return json_response(meta_convention.list_keys(session))


@bp.post("/<key_name>")
@doc("Declare a metadata key (admins)", body=_KEY)
def add_key(key_name: str) -> Response:
    body = json_object(required=False)
    with unit_of_work() as session:
        authorize(session, "add_meta_convention")
        meta_convention.add_key(
            session,
            key_name,
            key(body, "key_type", str, None),
            key(body, "value_type", str, None),
            key(body, "value_regexp", str, None),
        )
    return created()


@bp.get("/<key_name>/")
@doc("The values a key allows")
def list_values(key_name: str) -> Response:
    check_accept(JSON)
    with unit_of_work() as session:
        authorize(session, "read")
        return json_response(meta_convention.list_values(session, key_name))


@bp.post("/<key_name>/")
@doc(
    "Allow one more value for a key (admins)",
    body=schema_object(["value"], value={"type": ["string", "number"]}),
)
def add_value(key_name: str) -> Response:
    value = key(json_object(), "value")
    with unit_of_work() as session:
        authorize(session, "add_meta_convention")
        meta_convention.add_value(session, key_name, value)
    return created()
