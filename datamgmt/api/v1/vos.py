"""``/vos``: Rucio's multi-VO administration, answered as a Rucio 41 server in single-VO mode answers it.

We run one VO, Rucio's default ``def``: a VO in every catalogue key (accounts, scopes, RSEs) is not
built (docs/rucio-compatibility.md). Rucio 41 with ``[common] multi_vo = False`` still serves these
routes, and the stock client and scripts meet exactly these answers there:

- every route checks the caller's permission first (root and admins, Rucio's default policy),
  refusing with 401 ``AccessDenied`` and Rucio's own message for each action;
- listing, adding and updating VOs then fail with 409 ``UnsupportedOperation`` ("VO operations
  cannot be performed in single VO mode."), as Rucio's core checks the mode after the permission;
- recovering a VO's root identity needs no multi-VO mode: it maps an identity to the account
  ``root`` of that VO, which in single-VO mode exists only for ``def`` (Rucio's
  ``InternalAccount('root', vo)``), so any other VO is a 404 ``AccountNotFound``.

Before the permission, Rucio reads the body and checks the VO name's characters; a bad name is a
500 ``RucioException`` there, a 400 here (bad input is the caller's error).
"""

from __future__ import annotations

import re

from flask import Blueprint, Response
from sqlalchemy.orm import Session

from datamgmt.api.context import issuer, unit_of_work
from datamgmt.api.openapi import doc, schema_object
from datamgmt.api.params import json_object, key
from datamgmt.api.streaming import JSON_STREAM, check_accept, created
from datamgmt.core import identity as identities
from datamgmt.core.permission import has_permission
from datamgmt.exceptions import AccessDenied, AccountNotFound, InputValidationError, UnsupportedOperation

bp = Blueprint("vos", __name__, url_prefix="/vos")

#: Rucio's only VO when multi-VO mode is off.
DEFAULT_VO = "def"
#: The characters Rucio accepts in a VO name (``rucio.core.vo.map_vo``).
_VO_NAME = re.compile(r"[a-zA-Z0-9.\-]+")
_VO_BODY = schema_object(description={"type": "string"}, email={"type": "string"})
_SINGLE_VO = "VO operations cannot be performed in single VO mode."


def _vo_name(vo: str) -> str:
    if not _VO_NAME.fullmatch(vo):
        raise InputValidationError("Invalid characters in VO name.")
    return vo


def _permit(session: Session, action: str, refusal: str) -> None:
    """Rucio's permission check for ``action``, refused with Rucio's message for it."""
    account = issuer()
    if not has_permission(session, account, action, {}):
        # Rucio appends the policy's (here empty) explanation after the sentence.
        raise AccessDenied(f"Account {account} {refusal}. ")


@bp.get("/")
@doc("List the VOs: refused in single-VO mode (409 UnsupportedOperation), as Rucio does")
def list_vos() -> Response:
    check_accept(JSON_STREAM)
    with unit_of_work(read_only=True) as session:
        _permit(session, "list_vos", "cannot list VOs")
    raise UnsupportedOperation(_SINGLE_VO)


@bp.post("/<vo>")
@doc("Add a VO: refused in single-VO mode (409 UnsupportedOperation), as Rucio does", body=_VO_BODY)
def add_vo(vo: str) -> Response:
    json_object(required=False)
    _vo_name(vo)
    with unit_of_work(read_only=True) as session:
        _permit(session, "add_vo", "cannot add a VO")
    raise UnsupportedOperation(_SINGLE_VO)


@bp.put("/<vo>")
@doc("Update a VO: refused in single-VO mode (409 UnsupportedOperation), as Rucio does", body=_VO_BODY)
def update_vo(vo: str) -> Response:
    json_object()
    _vo_name(vo)
    with unit_of_work(read_only=True) as session:
        _permit(session, "update_vo", "cannot update VO")
    raise UnsupportedOperation(_SINGLE_VO)


@bp.post("/<vo>/recover")
@doc(
    "Map an identity to the VO's root account (only 'def' has one in single-VO mode)",
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
    identity, kind, email = key(body, "identity", str), key(body, "authtype", str), key(body, "email", str)
    password, default = key(body, "password", str, None), bool(key(body, "default", bool, False))
    _vo_name(vo)
    with unit_of_work() as session:
        _permit(session, "recover_vo_root_identity", "can not recover root identity")
        if vo != DEFAULT_VO:
            raise AccountNotFound("Account 'root' does not exist.")
        identities.add_account_identity(session, identity, kind, "root", email, password, default)
    return created()
