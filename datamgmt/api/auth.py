"""Who is calling: session tokens, OIDC bearer JWTs and X.509 DNs from a trusted proxy.

Every endpoint not marked :func:`public` needs an identity, checked before the view
looks anything up.  A missing, unknown or expired token is 401 ``CannotAuthenticate``
(Rucio answers a missing token with 400 ``ValueError``; a 401 tells a probe nothing
about which objects exist and makes the stock client log in again and retry).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, request
from sqlalchemy.orm import Session

from datamgmt.api.context import end_first_unit, in_first_unit
from datamgmt.api.oidc import OIDCClient, OIDCVerifier
from datamgmt.config import Config
from datamgmt.core.account import list_accounts, touch_status
from datamgmt.core.db.constants import AccountStatus, IdentityType
from datamgmt.core.identity import account_has_identity
from datamgmt.core.throttle import Limit
from datamgmt.core.token import validate_token
from datamgmt.core.validation import account_shown
from datamgmt.exceptions import CannotAuthenticate

View = TypeVar("View", bound=Callable[..., Any])
_OIDC_KEY = "datamgmt.oidc"
_OIDC_CLIENT_KEY = "datamgmt.oidc_client"
_X509_KEY = "datamgmt.x509_header"
_X509_PROXIES_KEY = "datamgmt.x509_proxies"
#: Methods a browser may send cross-site that change nothing here.
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: ``app.extensions`` key of the login lockout's (per source, per identity) :class:`Limit` pair.
LOGIN_LIMITS_KEY = "datamgmt.login_limits"


def public(view: View) -> View:
    """Mark an endpoint that needs no identity (ping, login, metrics, the OpenAPI document)."""
    view.public = True  # type: ignore[attr-defined]  # a marker on the function itself, read by the auth hook
    return view


def configure(app: Flask, config: Config) -> None:
    """Read the [auth] options once and install the per-request authentication."""
    issuer = config.get("auth", "oidc_issuer")
    jwks_url = config.get("auth", "oidc_jwks_url")
    if issuer and jwks_url:
        app.extensions[_OIDC_KEY] = OIDCVerifier(issuer, jwks_url, config.get("auth", "oidc_audience"))
        client_id, base_url = config.get("auth", "oidc_client_id"), config.get("api", "base_url")
        if client_id and base_url:
            app.extensions[_OIDC_CLIENT_KEY] = OIDCClient(
                client_id,
                config.get("auth", "oidc_client_secret"),
                base_url.rstrip("/") + "/auth/oidc_code",
                config.get("auth", "oidc_scope"),
                config.get_int("auth", "oidc_refresh_lifetime"),
            )
    app.extensions[_X509_KEY] = config.get("auth", "x509_header")
    app.extensions[_X509_PROXIES_KEY] = frozenset(
        address.strip() for address in config.get("auth", "x509_proxies").split(",") if address.strip()
    )
    window, lockout = config.get_int("auth", "login_window"), config.get_int("auth", "login_lockout")
    app.extensions[LOGIN_LIMITS_KEY] = (
        Limit(config.get_int("auth", "login_source_max_failures"), window, lockout),
        Limit(config.get_int("auth", "login_max_failures"), window, lockout),
    )
    app.before_request(_authenticate)
    app.teardown_request(end_first_unit)


def oidc_verifier() -> OIDCVerifier:
    """The app's verifier of the identity provider's tokens; a 401 when OIDC is off (a client's
    choice of login, not a server fault)."""
    verifier = configured_oidc_verifier()
    if verifier is None:
        raise CannotAuthenticate("Cannot authenticate: OIDC logins are not configured on this server")
    return verifier


def oidc_client() -> OIDCClient:
    """This server's client registration at the provider; a 401 without one."""
    client: OIDCClient | None = current_app.extensions.get(_OIDC_CLIENT_KEY)
    if client is None:
        raise CannotAuthenticate(
            "Cannot authenticate: OIDC browser logins are not configured on this server "
            "([auth] oidc_client_id, [api] base_url)"
        )
    return client


def x509_dn() -> str | None:
    """The client DN forwarded by a trusted proxy: only when a header is configured and the
    request comes from one of ``[auth] x509_proxies`` (anyone else could set the header)."""
    header = current_app.extensions.get(_X509_KEY)
    if not header or request.remote_addr not in current_app.extensions.get(_X509_PROXIES_KEY, ()):
        return None
    return request.headers.get(header) or None


def account_for_identity(session: Session, identity: str, kind: IdentityType, wanted: str | None) -> str:
    """The account an identity acts as: ``wanted`` (``X-Rucio-Account``) if mapped, else its only account."""
    if wanted:
        if account_has_identity(session, wanted, identity, kind):
            return wanted
        raise CannotAuthenticate(
            f"Cannot authenticate to account {account_shown(wanted)} with given credentials"
        )
    accounts = [
        info.account
        for info in list_accounts(session, identity=identity)
        if account_has_identity(session, info.account, identity, kind)
    ]
    if len(accounts) != 1:
        raise CannotAuthenticate(
            "Cannot authenticate: the identity maps to no single account; set X-Rucio-Account"
        )
    return accounts[0]


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() or None if header[:7].lower() == "bearer " else None


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


def _identity_account(session: Session, identity: str, kind: IdentityType) -> str:
    account = account_for_identity(session, identity, kind, request.headers.get("X-Rucio-Account"))
    if touch_status(session, account) != AccountStatus.ACTIVE:
        raise CannotAuthenticate(f"Cannot authenticate: account {account} is not active")
    return account


def configured_oidc_verifier() -> OIDCVerifier | None:
    """The app's OIDC verifier, or None when ``[auth] oidc_issuer`` is off (the web sign-in uses it too)."""
    verifier: OIDCVerifier | None = current_app.extensions.get(_OIDC_KEY)
    return verifier


def current_account() -> str:
    """Authenticate this request from its token, bearer JWT or proxy DN, in the request's first unit of work."""
    token = request.headers.get("X-Rucio-Auth-Token") or _bearer()
    verifier = configured_oidc_verifier()
    # A JWT is checked (and the issuer's keys fetched) before any transaction opens.
    oidc = verifier.identity(token) if token and verifier is not None and _looks_like_jwt(token) else None
    dn = None if token else x509_dn()
    if dn and request.method not in _SAFE_METHODS and request.mimetype != "application/json":
        # Browsers present client certificates on their own: a cross-site form must not act as
        # the user.  A JSON body cannot be sent cross-site without a CORS preflight, which fails.
        raise CannotAuthenticate(
            "Cannot authenticate: a state-changing request by client certificate must be JSON"
        )
    if oidc is not None:
        return in_first_unit(lambda session: _identity_account(session, oidc, IdentityType.OIDC))
    if token:
        return in_first_unit(lambda session: validate_token(session, token).account)
    if dn:
        return in_first_unit(lambda session: _identity_account(session, dn, IdentityType.X509))
    raise CannotAuthenticate("Cannot authenticate: no token was given (X-Rucio-Auth-Token)")


def _authenticate() -> None:
    g.request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or getattr(view, "public", False):
        return
    g.issuer = current_account()
