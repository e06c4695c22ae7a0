"""``/accounts``: accounts, their identities, attributes, scopes, limits and usage."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, redirect, request
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from datamgmt.api.context import authorize, issuer, unit_of_work
from datamgmt.api.openapi import doc, schema_object
from datamgmt.api.params import json_object, key
from datamgmt.api.streaming import created, done, json_response, stream
from datamgmt.core import account as accounts
from datamgmt.core import identity as identities
from datamgmt.core import quota
from datamgmt.core import scope as scopes
from datamgmt.core.permission import has_permission
from datamgmt.core.rse import get_rse_id, rse_names_by_id

bp = Blueprint("accounts", __name__, url_prefix="/accounts")

_ANY: dict[str, Any] = {}


def _iso(value: Any) -> str | None:
    # GET /accounts/{a} is the one place where Rucio sends ISO dates.
    return value.isoformat(timespec="seconds") if value is not None else None


def account_record(info: accounts.AccountInfo) -> dict[str, Any]:
    return {
        "account": info.account,
        "account_type": info.account_type,
        "status": info.status,
        "email": info.email,
        "created_at": _iso(info.created_at),
        "updated_at": _iso(info.updated_at),
        "suspended_at": _iso(info.suspended_at),
        "deleted_at": None,
    }


@bp.get("/")
@doc("List accounts", query={"account_type": {"type": "string"}, "identity": {"type": "string"}})
def list_accounts() -> Response:
    account_type, identity = request.args.get("account_type"), request.args.get("identity")

    def rows(session: Session) -> Any:
        me = authorize(session, "read")
        everyones = has_permission(session, me, "read_account_private", {"account": None})
        for info in accounts.list_accounts(session, account_type, identity):
            email = info.email if everyones or info.account == me else None
            yield {"account": info.account, "type": info.account_type, "email": email, "status": info.status}

    return stream(rows)


@bp.get("/whoami")
@doc("Redirect (303) to the caller's own account")
def whoami() -> BaseResponse:
    # A relative Location, exactly as Rucio sends it; requests resolves it to /accounts/<me>.
    response = redirect(str(issuer()), code=303)
    response.autocorrect_location_header = False
    return response


@bp.get("/<account>")
@doc("One account")
def get_account(account: str) -> Response:
    with unit_of_work() as session:
        me = authorize(session, "read")
        record = account_record(accounts.get_account(session, account))
        if not has_permission(session, me, "read_account_private", {"account": account}):
            record["email"] = None  # another account's address is for admins only
        return json_response(record)


@bp.post("/<account>")
@doc(
    "Create an account",
    body=schema_object(["type"], type={"type": "string"}, email={"type": ["string", "null"]}),
)
def add_account(account: str) -> Response:
    body = json_object()
    kind, email = key(body, "type", str), key(body, "email", str, None)
    with unit_of_work() as session:
        authorize(session, "add_account", account=account)
        accounts.add_account(session, account, kind, email)
    return created()


@bp.put("/<account>")
@doc("Change an account's email or status", body={"type": "object"})
def update_account(account: str) -> Response:
    body = json_object()
    with unit_of_work() as session:
        authorize(session, "update_account", account=account)
        for name in body:
            accounts.update_account(session, account, name, key(body, name, str))
    return done()


@bp.delete("/<account>")
@doc("Delete an account")
def delete_account(account: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "del_account", account=account)
        accounts.delete_account(session, account)
    return done()


# --- attributes ------------------------------------------------------------------------------
@bp.get("/<account>/attr/")
@doc("Attributes of an account")
def list_attributes(account: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        return json_response(accounts.list_account_attributes(session, account))


@bp.post("/<account>/attr/<key_name>")
@doc("Set an account attribute", body=schema_object(["value"], value=_ANY))
def add_attribute(account: str, key_name: str) -> Response:
    value = key(json_object(), "value", (str, int, float, bool))
    with unit_of_work() as session:
        authorize(session, "add_account_attribute", account=account, key=key_name)
        accounts.add_account_attribute(session, account, key_name, value)
    return created()


@bp.delete("/<account>/attr/<key_name>")
@doc("Remove an account attribute")
def delete_attribute(account: str, key_name: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "del_account_attribute", account=account, key=key_name)
        accounts.delete_account_attribute(session, account, key_name)
    return done()


# --- identities ------------------------------------------------------------------------------
_IDENTITY_BODY = schema_object(
    ["identity", "authtype"],
    identity={"type": "string"},
    authtype={"type": "string"},
    email={"type": ["string", "null"]},
    password={"type": ["string", "null"]},
    default={"type": "boolean"},
)


@bp.get("/<account>/identities")
@doc("Identities mapped to an account")
def list_identities(account: str) -> Response:
    def rows(session: Session) -> Any:
        authorize(session, "read_account_private", account=account)
        yield from identities.list_identities(session, account)

    return stream(rows)


@bp.post("/<account>/identities")
@doc("Map an identity to an account", body=_IDENTITY_BODY)
def add_identity(account: str) -> Response:
    body = json_object()
    identity, kind = key(body, "identity", str), key(body, "authtype", str)
    email, password = key(body, "email", str, None), key(body, "password", str, None)
    default = bool(key(body, "default", bool, False))
    with unit_of_work() as session:
        authorize(session, "add_identity", account=account)
        identities.add_account_identity(session, identity, kind, account, email, password, default)
    return created()


@bp.delete("/<account>/identities")
@doc(
    "Unmap an identity",
    body=schema_object(["identity", "authtype"], identity={"type": "string"}, authtype={"type": "string"}),
)
def delete_identity(account: str) -> Response:
    body = json_object()
    identity, kind = key(body, "identity", str), key(body, "authtype", str)
    with unit_of_work() as session:
        authorize(session, "del_identity", account=account)
        identities.del_account_identity(session, identity, kind, account)
    return done()


# --- scopes ----------------------------------------------------------------------------------
@bp.get("/<account>/scopes/")
@doc("Scopes an account owns, as a JSON list")
def list_scopes(account: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        return json_response(scopes.list_scopes(session, account))


@bp.post("/<account>/scopes/<scope>")
@doc("Create a scope owned by the account")
def add_scope(account: str, scope: str) -> Response:
    with unit_of_work(one_write=True) as session:
        authorize(session, "add_scope", account=account, scope=scope)
        scopes.add_scope(session, scope, account)
    return created()


# --- limits ----------------------------------------------------------------------------------
_LIMIT_BODY = schema_object(["bytes"], bytes={"type": "integer"})


def _limit_bytes() -> int:
    limit: int = key(json_object(), "bytes", int)
    return limit


@bp.get("/<account>/limits/local")
@bp.get("/<account>/limits")
@doc("Local limits of an account, by RSE name")
def get_local_limits(account: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        accounts.get_account(session, account)
        limits = quota.get_local_account_limits(session, account)
        names = rse_names_by_id(session, list(limits))
        return json_response({names[rse_id]: value for rse_id, value in limits.items() if rse_id in names})


@bp.get("/<account>/limits/local/<rse>")
@bp.get("/<account>/limits/<rse>")
@doc("The local limit of an account on one RSE")
def get_local_limit(account: str, rse: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        accounts.get_account(session, account)
        rse_id = get_rse_id(session, rse)
        return json_response({rse: quota.get_local_account_limits(session, account).get(rse_id)})


@bp.post("/<account>/limits/local/<rse>")
@doc("Set the local limit of an account on an RSE (-1: unlimited)", body=_LIMIT_BODY)
def set_local_limit(account: str, rse: str) -> Response:
    nbytes = _limit_bytes()
    with unit_of_work(one_write=True) as session:
        authorize(session, "set_local_account_limit", account=account, rse=rse)
        quota.set_local_account_limit(session, account, rse, nbytes)  # checks the account too
    return created()


@bp.delete("/<account>/limits/local/<rse>")
@doc("Remove the local limit of an account on an RSE")
def delete_local_limit(account: str, rse: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "delete_local_account_limit", account=account, rse=rse)
        quota.delete_local_account_limit(session, account, rse)
    return done()


@bp.get("/<account>/limits/global")
@doc("Global limits of an account, by RSE expression")
def get_global_limits(account: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        accounts.get_account(session, account)
        return json_response(quota.get_global_account_limits(session, account))


@bp.get("/<account>/limits/global/<path:rse_expression>")
@doc("The global limit of an account on one RSE expression")
def get_global_limit(account: str, rse_expression: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        accounts.get_account(session, account)
        limits = quota.get_global_account_limits(session, account)
        return json_response({rse_expression: limits.get(rse_expression)})


@bp.post("/<account>/limits/global/<path:rse_expression>")
@doc("Set the global limit of an account on an RSE expression", body=_LIMIT_BODY)
def set_global_limit(account: str, rse_expression: str) -> Response:
    nbytes = _limit_bytes()
    with unit_of_work() as session:
        authorize(session, "set_global_account_limit", account=account, rse_expression=rse_expression)
        accounts.get_account(session, account)
        quota.set_global_account_limit(session, account, rse_expression, nbytes)
    return created()


@bp.delete("/<account>/limits/global/<path:rse_expression>")
@doc("Remove the global limit of an account on an RSE expression")
def delete_global_limit(account: str, rse_expression: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "delete_global_account_limit", account=account, rse_expression=rse_expression)
        quota.delete_global_account_limit(session, account, rse_expression)
    return done()


# --- usage -----------------------------------------------------------------------------------
def _check_usage_access(session: Session, account: str) -> None:
    # Usage is no secret inside a collaboration: every account may read every account's.
    authorize(session, "read")
    accounts.get_account(session, account)


@bp.get("/<account>/usage/local")
@bp.get("/<account>/usage")
@bp.get("/<account>/usage/")
@bp.get("/<account>/usage/local/<rse>")
@bp.get("/<account>/usage/<rse>")
@doc("Usage and limits of an account per RSE")
def get_local_usage(account: str, rse: str | None = None) -> Response:
    def rows(session: Session) -> Any:
        _check_usage_access(session, account)
        yield from quota.get_local_account_usage(session, account, rse)

    return stream(rows)


@bp.get("/<account>/usage/global")
@bp.get("/<account>/usage/global/<path:rse_expression>")
@doc("Usage and limits of an account per global limit")
def get_global_usage(account: str, rse_expression: str | None = None) -> Response:
    def rows(session: Session) -> Any:
        _check_usage_access(session, account)
        for usage in quota.get_global_account_usage(session, account):
            if rse_expression is None or usage["rse_expression"] == rse_expression:
                yield usage

    return stream(rows)


# --- /accountlimits: Rucio's older paths for setting limits, served by the same views --------
limits_bp = Blueprint("accountlimits", __name__, url_prefix="/accountlimits")
for _rule in ("/local/<account>/<rse>", "/<account>/<rse>"):
    limits_bp.add_url_rule(_rule, view_func=set_local_limit, methods=["POST"])
    limits_bp.add_url_rule(_rule, view_func=delete_local_limit, methods=["DELETE"])
limits_bp.add_url_rule(
    "/global/<account>/<path:rse_expression>", view_func=set_global_limit, methods=["POST"]
)
limits_bp.add_url_rule(
    "/global/<account>/<path:rse_expression>", view_func=delete_global_limit, methods=["DELETE"]
)
