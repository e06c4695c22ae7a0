"""``/vos``: Rucio's multi-VO administration.

With ``[common] multi_vo = true`` each VO other than ``def`` has a catalogue of its own
(core/vo.py), and these routes register VOs and reach their root accounts.  Only an admin of
the default VO may call them (Rucio's super_root, in VO ``def``): a VO's own root administers
its VO, never the instance.  On a single-VO instance they answer exactly as Rucio 41 with
``multi_vo = False`` does:

- every route checks the caller's permission first (root and admins, Rucio's default policy),
  refusing with 401 ``AccessDenied`` and Rucio's own message for each action;
- listing, adding and updating VOs then fail with 409 ``UnsupportedOperation`` ("VO operations
  cannot be performed in single VO mode."), as Rucio's core checks the mode after the permission;
- recovering a VO's root identity needs no multi-VO mode: it maps an identity to the account
  ``root`` of that VO, which in single-VO mode exists only for ``def``, so any other VO is a
  404 ``AccountNotFound``.

Before the permission, Rucio reads the body and checks the VO name's characters; a bad name is a
500 ``RucioException`` there, a 400 here (bad input is the caller's error).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from sqlalchemy.orm import Session

from datamgmt.api.context import current_vo, issuer, unit_of_work
from datamgmt.api.openapi import doc, schema_object
from datamgmt.api.params import json_object, key
from datamgmt.api.streaming import JSON_STREAM, check_accept, created, stream_items
from datamgmt.core import vo as vos
from datamgmt.core.permission import has_permission
from datamgmt.exceptions import AccessDenied

bp = Blueprint("vos", __name__, url_prefix="/vos")

_VO_BODY = schema_object(description={"type": "string"}, email={"type": "string"})


def _permit(session: Session, action: str, refusal: str) -> None:
    """Rucio's permission check for ``action``, refused with Rucio's message for it."""
    account = issuer()
    if current_vo() != vos.DEFAULT_VO or not has_permission(session, account, action, {}):
        # Rucio appends the policy's (here empty) explanation after the sentence.
        raise AccessDenied(f"Account {account} {refusal}. ")


def _multi_vo() -> bool:
    return bool(current_app.config.get("MULTI_VO"))


@bp.get("/")
@doc("List the VOs (multi-VO mode; 409 UnsupportedOperation otherwise, as Rucio does)")
def list_vos() -> Response:
    check_accept(JSON_STREAM)
    with unit_of_work(read_only=True) as session:
        _permit(session, "list_vos", "cannot list VOs")
        vos.require_multi_vo(_multi_vo())
        listed = vos.list_vos(session)
    return stream_items(listed)


@bp.post("/<vo>")
@doc("Add a VO with a catalogue of its own and a root account the caller can log in to", body=_VO_BODY)
def add_vo(vo: str) -> Response:
    body = json_object(required=False) or {}
    description, email = key(body, "description", str, None), key(body, "email", str, None)
    vos.vo_name(vo)
    with unit_of_work() as session:
        account = issuer()
        _permit(session, "add_vo", "cannot add a VO")
        vos.require_multi_vo(_multi_vo())
        vos.add_vo(session, vo, description, email, str(account), current_app.config.get("DATABASE_URL"))
    return created()


@bp.put("/<vo>")
@doc("Update a VO's description and email (multi-VO mode)", body=_VO_BODY)
def update_vo(vo: str) -> Response:
    body = json_object()
    vos.vo_name(vo)
    with unit_of_work() as session:
        _permit(session, "update_vo", "cannot update VO")
        vos.require_multi_vo(_multi_vo())
        vos.update_vo(session, vo, body)
    return Response("OK", status=200, content_type="text/html; charset=utf-8")


@bp.post("/<vo>/recover")
@doc(
    "Map an identity to the VO's root account",
    body=schema_object(
        ["identity", "authtype", "email"],
        identity={"type": "string"},
        authtype={"type": "string"},
        email={"type": "string"},
        password={"type": "string"},
        default={"type": "boolean"},
    ),
)
def recover_root_identity(vo: str) -> Response:
    body = json_object()
    identity = {
        "identity": key(body, "identity", str),
        "authtype": key(body, "authtype", str),
        "email": key(body, "email", str),
        "password": key(body, "password", str, None),
        "default": bool(key(body, "default", bool, False)),
    }
    vos.vo_name(vo)
    with unit_of_work() as session:
        _permit(session, "recover_vo_root_identity", "can not recover root identity")
        vos.recover_root_identity(session, vo, identity, current_app.config.get("DATABASE_URL"))
    return created()
