"""``/scopes``: the namespaces and who owns them."""

from __future__ import annotations

from flask import Blueprint, Response

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.openapi import doc
from datamgmt.api.streaming import created, json_response
from datamgmt.core import scope as scopes

bp = Blueprint("scopes", __name__, url_prefix="/scopes")


@bp.get("/")
@doc("Every scope, as a JSON list of names")
def list_scopes() -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        return json_response(scopes.list_scopes(session))


@bp.get("/owner/")
@doc("Every scope with its owning account")
def list_scope_owners() -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        return json_response(scopes.list_scopes_with_owner(session))


@bp.get("/<account>/scopes")
@doc("The scopes an account owns")
def list_account_scopes(account: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        return json_response(scopes.list_scopes(session, account))


@bp.post("/<account>/<scope>")
@doc("Create a scope owned by an account")
def add_scope(account: str, scope: str) -> Response:
    with unit_of_work(one_write=True) as session:
        authorize(session, "add_scope", account=account, scope=scope)
        scopes.add_scope(session, scope, account)
    return created()


@bp.put("/<account>/<scope>")
@doc("Give a scope to another account (admins only); answers 201 as Rucio does")
def set_scope_owner(account: str, scope: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "update_scope", account=account, scope=scope)
        scopes.set_scope_owner(session, scope, account)
    return created("")
