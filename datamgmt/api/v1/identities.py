"""``/identities``: give an account a username/password or the caller's X.509 DN, and find the
accounts of an identity.

Credentials come in headers, as Rucio's client sends them (``X-Rucio-Username``,
``X-Rucio-Password``, ``X-Rucio-Email``); the DN is the one the trusted proxy forwards (Rucio
reads ``SSL_CLIENT_S_DN``).  An identity that already exists is a ``Duplicate``: adding it to a
second account never resets its password.  Who may look an identity up follows the rule for
reading identities: admins any, users only identities mapped to their own account.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from datamgmt.api.auth import x509_dn
from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.openapi import doc
from datamgmt.api.streaming import check_accept, created, json_response
from datamgmt.core import identity as identities
from datamgmt.core.db.constants import IdentityType
from datamgmt.exceptions import MalformedRequest

bp = Blueprint("identities", __name__, url_prefix="/identities")
JSON = "application/json"


def _add(
    account: str, identity: str, kind: IdentityType, email: str, password: str | None = None
) -> Response:
    with unit_of_work() as session:
        authorize(session, "add_identity", account=account)
        identities.add_identity(session, identity, kind.name, email=email, password=password)
        identities.add_account_identity(session, identity, kind.name, account, email=email, password=password)
    return created()


@bp.put("/<account>/userpass")
@doc("Give an account a username and password (headers X-Rucio-Username, -Password, -Email)")
def add_userpass(account: str) -> Response:
    username, password = request.headers.get("X-Rucio-Username"), request.headers.get("X-Rucio-Password")
    email = request.headers.get("X-Rucio-Email")
    if not username or not password or not email:
        raise MalformedRequest("Username, Email and Password must be set.")
    return _add(account, username, IdentityType.USERPASS, email, password)


@bp.put("/<account>/x509")
@doc("Map the caller's X.509 DN to an account (header X-Rucio-Email)")
def add_x509(account: str) -> Response:
    dn, email = x509_dn(), request.headers.get("X-Rucio-Email")
    if not dn or not email:
        raise MalformedRequest("SSL_CLIENT_S_DN and email must be set.")
    return _add(account, dn, IdentityType.X509, email)


def _accounts(identity: str, kind: str) -> Response:
    check_accept(JSON)
    with unit_of_work() as session:
        authorize(
            session, "list_accounts_for_identity", identity=identity, identity_type=IdentityType.parse(kind)
        )
        return json_response(identities.list_accounts_for_identity(session, identity, kind))


@bp.get("/<identity_key>/<kind>/accounts")
@doc("The accounts an identity is mapped to")
def accounts_of(identity_key: str, kind: str) -> Response:
    return _accounts(identity_key, kind)


@bp.get("/accounts")
@doc(
    "The accounts an identity is mapped to",
    query={"identity_key": {"type": "string"}, "type": {"type": "string"}},
)
def accounts_by_query() -> Response:
    identity_key, kind = request.args.get("identity_key"), request.args.get("type")
    if not identity_key:
        raise MalformedRequest("identity_key parameter is required.")
    if not kind:
        raise MalformedRequest("type parameter is required.")
    return _accounts(identity_key, kind)
