"""``/auth``: log in (userpass, X.509 via the trusted proxy) and validate tokens.

A login answers with an empty body and the token in headers, exactly as Rucio does;
the stock client reads ``X-Rucio-Auth-Token`` and caches it.

A password is checked between two short transactions, never inside a write one: scrypt
takes a good fraction of a second, and on SQLite a write transaction holds the one write
lock.  An unknown username costs the same hash as a known one, and gets the same answer.
Failed logins count against the source address and the identity (core/throttle.py); a
locked one gets 429 with ``Retry-After`` before any hash is computed.
"""

from __future__ import annotations

import datetime

from flask import Blueprint, Response, current_app, g, request

from datamgmt.api.auth import LOGIN_LIMITS_KEY, account_for_identity, public, x509_dn
from datamgmt.api.context import unit_of_work
from datamgmt.api.openapi import doc
from datamgmt.api.streaming import rfc1123
from datamgmt.core import throttle
from datamgmt.core.db.constants import IdentityType
from datamgmt.core.identity import hash_password, needs_rehash, set_password, userpass_hash, verify_password
from datamgmt.core.token import IssuedToken, issue_token, validate_token
from datamgmt.core.validation import account_shown
from datamgmt.exceptions import CannotAuthenticate, TooManyLoginAttempts

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


def _issue(identity: str, kind: IdentityType, new_hash: str | None = None) -> IssuedToken:
    """A token for the account ``X-Rucio-Account`` names, or the identity's only one."""
    with unit_of_work(read_only=False) as session:
        account = account_for_identity(session, identity, kind)
        if new_hash is not None:
            set_password(session, identity, hashed=new_hash)
        throttle.forget(session, [throttle.identity_key(identity)])
        return issue_token(
            session, account, identity, kind, current_app.config["TOKEN_LIFETIME"], ip=_source()[:39]
        )


def _source() -> str:
    return request.remote_addr or ""


def _limits(identity: str | None) -> dict[str, throttle.Limit]:
    per_source, per_identity = current_app.extensions[LOGIN_LIMITS_KEY]
    limits = {throttle.source_key(_source()): per_source}
    if identity:
        limits[throttle.identity_key(identity)] = per_identity
    return limits


def _refuse_if_locked(identity: str | None) -> None:
    """429 with Retry-After while this source or identity is locked out; one short read."""
    with unit_of_work(read_only=True) as session:
        wait = throttle.retry_after(session, list(_limits(identity)))
    if wait:
        raise TooManyLoginAttempts(wait)


def _failed(identity: str | None, error: CannotAuthenticate) -> CannotAuthenticate:
    """Count a failed login (one short write) and return the error to raise."""
    with unit_of_work(read_only=False) as session:
        throttle.record_failure(session, _limits(identity))
    return error


@bp.before_request
def _lockout() -> None:
    _refuse_if_locked(request.headers.get("X-Rucio-Username") if request.endpoint == "auth.userpass" else None)


@bp.get("/userpass")
@public
@doc("Log in with X-Rucio-Username / X-Rucio-Password; the token comes back in X-Rucio-Auth-Token")
def userpass() -> Response:
    username = request.headers.get("X-Rucio-Username")
    password = request.headers.get("X-Rucio-Password")
    if not username or not password:
        raise CannotAuthenticate("Cannot authenticate without passing all required arguments")
    wanted = request.headers.get("X-Rucio-Account") or ""
    with unit_of_work(read_only=True) as session:
        stored = userpass_hash(session, username)
    verified = verify_password(password, stored)  # as slow for an unknown user as for a known one
    if stored is None or not verified:
        target = f" to account {account_shown(wanted)}" if wanted else ""
        raise _failed(username, CannotAuthenticate(f"Cannot authenticate{target} with given credentials"))
    new_hash = hash_password(password) if needs_rehash(stored) else None
    return _token_response(_issue(username, IdentityType.USERPASS, new_hash))


@bp.get("/x509")
@bp.get("/x509_proxy")
@public
@doc("Log in with the client DN that the trusted reverse proxy forwards")
def x509() -> Response:
    dn = x509_dn()
    if not dn:
        raise _failed(None, CannotAuthenticate("Cannot authenticate: no client certificate DN was forwarded"))
    return _token_response(_issue(dn, IdentityType.X509))


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
