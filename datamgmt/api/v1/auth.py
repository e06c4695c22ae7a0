"""``/auth``: log in (userpass, X.509 via the trusted proxy) and validate tokens.

A login answers with an empty body and the token in headers, exactly as Rucio does;
the stock client reads ``X-Rucio-Auth-Token`` and caches it.

How a password is checked, and how failed logins are counted, is in :mod:`datamgmt.api.login`.
"""

from __future__ import annotations

import datetime

from flask import Blueprint, Response, g, request

from datamgmt.api.auth import public, x509_dn
from datamgmt.api.context import unit_of_work
from datamgmt.api.login import failed, issue, refuse_if_locked, userpass_login
from datamgmt.api.openapi import doc
from datamgmt.api.streaming import rfc1123
from datamgmt.core.db.constants import IdentityType
from datamgmt.core.token import IssuedToken, validate_token
from datamgmt.exceptions import CannotAuthenticate

bp = Blueprint("auth", __name__, url_prefix="/auth")

_HEADERS = {
    "Access-Control-Expose-Headers": (
        "X-Rucio-Auth-Token, X-Rucio-Auth-Token-Expires, X-Rucio-Auth-Account, X-Rucio-Auth-Accounts"
    ),
    "Cache-Control": "no-cache, no-store, max-age=0, must-revalidate",
}


def _token_response(issued: IssuedToken) -> Response:
    response = Response(b"", status=200, content_type="application/octet-stream")
    response.headers.update(_HEADERS)
    response.headers["X-Rucio-Auth-Token"] = issued.token
    response.headers["X-Rucio-Auth-Token-Expires"] = rfc1123(issued.expires_at)
    response.headers["X-Rucio-Auth-Account"] = issued.account
    return response


@bp.before_request
def _lockout() -> None:
    if request.endpoint != "auth.userpass":
        refuse_if_locked(None)


@bp.get("/userpass")
@public
@doc("Log in with X-Rucio-Username / X-Rucio-Password; the token comes back in X-Rucio-Auth-Token")
def userpass() -> Response:
    issued = userpass_login(
        request.headers.get("X-Rucio-Username") or "",
        request.headers.get("X-Rucio-Password") or "",
        request.headers.get("X-Rucio-Account"),
    )
    return _token_response(issued)


@bp.get("/x509")
@bp.get("/x509_proxy")
@bp.get("/x509/webui")  # Rucio serves its web UI's certificate login with the same view
@public
@doc("Log in with the client DN that the trusted reverse proxy forwards")
def x509() -> Response:
    dn = x509_dn()
    if not dn:
        raise failed(None, CannotAuthenticate("Cannot authenticate: no client certificate DN was forwarded"))
    return _token_response(issue(dn, IdentityType.X509, request.headers.get("X-Rucio-Account")))


@bp.get("/validate")
@doc("Who the presented token belongs to (a Python repr, as Rucio answers)")
def validate() -> Response:
    token = request.headers.get("X-Rucio-Auth-Token")
    found: dict[str, object] = {"account": g.issuer, "identity": None, "lifetime": None}
    if token:
        with unit_of_work(read_only=False) as session:
            try:
                owner = validate_token(session, token)
            except CannotAuthenticate:
                # Authenticated another way (an OIDC JWT in the token header).
                owner = None
        if owner is not None:
            found = {"account": owner.account, "identity": owner.identity, "lifetime": owner.expires_at}
    lifetime = found["lifetime"]
    if isinstance(lifetime, datetime.datetime):
        found["lifetime"] = lifetime.replace(microsecond=0)
    return Response(repr(found), status=200, content_type="application/octet-stream")
