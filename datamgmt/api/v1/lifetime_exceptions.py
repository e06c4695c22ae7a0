"""``/lifetime_exceptions``: ask to keep DIDs past their lifetime; admins approve or reject."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from sqlalchemy.orm import Session

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.openapi import doc, schema_object
from datamgmt.api.params import json_object, key
from datamgmt.api.streaming import created, json_response, stream
from datamgmt.core import lifetime_exception

bp = Blueprint("lifetime_exceptions", __name__, url_prefix="/lifetime_exceptions")

_ADD = schema_object(
    ["dids"],
    dids={
        "type": "array",
        "items": schema_object(["scope", "name"], scope={"type": "string"}, name={"type": "string"}),
    },
    pattern={"type": ["string", "null"]},
    comments={"type": ["string", "null"]},
    expires_at={"type": ["string", "null"]},
)


@bp.get("/")
@doc("Every lifetime exception, one line per DID")
def list_all() -> Response:
    def rows(session: Session) -> Any:
        authorize(session, "read")
        yield from lifetime_exception.list_exceptions(session)

    return stream(rows)


@bp.post("/")
@doc("Ask for a lifetime exception", body=_ADD)
def add() -> Response:
    body = json_object()
    with unit_of_work() as session:
        account = authorize(session, "add_lifetime_exception")
        result = lifetime_exception.add_exception(
            session,
            key(body, "dids", list, []),
            account,
            key(body, "pattern", str, None),
            key(body, "comments", str, None),
            key(body, "expires_at", str, None),
        )
    return json_response(result, status=201)


@bp.get("/<exception_id>")
@doc("One lifetime exception, one line per DID")
def get_one(exception_id: str) -> Response:
    def rows(session: Session) -> Any:
        authorize(session, "read")
        yield from lifetime_exception.list_exceptions(session, exception_id)

    return stream(rows)


@bp.put("/<exception_id>")
@doc(
    "Approve or reject an exception (admins)",
    body=schema_object(
        ["state"],
        state={"type": "string", "enum": ["APPROVED", "REJECTED"], "x-rucio-error": "UnsupportedOperation"},
    ),
)
def update(exception_id: str) -> Response:
    state = key(json_object(), "state", str, None)
    with unit_of_work() as session:
        authorize(session, "update_lifetime_exception")
        lifetime_exception.update_exception(session, exception_id, state)
    return created()
