"""Who is calling: session tokens, OIDC bearer JWTs and X.509 DNs from a trusted proxy.

Every endpoint not marked :func:`public` needs an identity.  A missing token is
Rucio's 400 ``ValueError``; an unknown or expired one is 401 ``CannotAuthenticate``,
which makes the stock client log in again and retry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import jwt
from flask import Flask, current_app, g, request
from sqlalchemy.orm import Session

from datamgmt.api.context import end_first_unit, in_first_unit
from datamgmt.config import Config
from datamgmt.core.account import list_accounts, touch_status
from datamgmt.core.db.constants import AccountStatus, IdentityType
from datamgmt.core.identity import account_has_identity
from datamgmt.core.token import validate_token
from datamgmt.core.validation import shown
from datamgmt.exceptions import CannotAuthenticate, MalformedRequest

View = TypeVar("View", bound=Callable[..., Any])
_OIDC_KEY = "datamgmt.oidc"
_X509_KEY = "datamgmt.x509_header"
#: Signature algorithms accepted from an identity provider (never "none" or HMAC).
JWT_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


def public(view: View) -> View:
    """Mark an endpoint that needs no identity (ping, login, metrics, the OpenAPI document)."""
    view.public = True  # type: ignore[attr-defined]
    return view


class OIDCVerifier:
    """Checks bearer JWTs against one issuer's published keys (JWKS), cached."""

    def __init__(self, issuer: str, jwks_url: str, audience: str | None) -> None:
        self.issuer = issuer
        self.audience = audience or None
        self._keys = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=10)

    def identity(self, token: str) -> str:
        """The ``sub@iss`` identity of a valid token, or CannotAuthenticate."""
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=JWT_ALGORITHMS,
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iss", "sub"], "verify_aud": self.audience is not None},
            )
        except jwt.PyJWKClientError as exc:
            raise CannotAuthenticate(f"Cannot authenticate: the issuer's keys are unavailable ({exc})") from exc
        except jwt.InvalidTokenError as exc:
            raise CannotAuthenticate(f"Cannot authenticate with given credentials: {exc}") from exc
        return f"{claims['sub']}@{claims['iss']}"


def configure(app: Flask, config: Config) -> None:
    """Read the [auth] options once and install the per-request authentication."""
    issuer = config.get("auth", "oidc_issuer")
    jwks_url = config.get("auth", "oidc_jwks_url")
    if issuer and jwks_url:
        app.extensions[_OIDC_KEY] = OIDCVerifier(issuer, jwks_url, config.get("auth", "oidc_audience"))
    app.extensions[_X509_KEY] = config.get("auth", "x509_header")
    app.before_request(_authenticate)
    app.teardown_request(end_first_unit)


def x509_dn() -> str | None:
    """The client DN forwarded by the trusted proxy, when a header is configured."""
    header = current_app.extensions.get(_X509_KEY)
    return request.headers.get(header) or None if header else None


def account_for_identity(session: Session, identity: str, kind: IdentityType) -> str:
    """The account an identity acts as: ``X-Rucio-Account`` if mapped, else its only account."""
    wanted = request.headers.get("X-Rucio-Account")
    if wanted:
        if account_has_identity(session, wanted, identity, kind):
            return wanted
        raise CannotAuthenticate(f"Cannot authenticate to account {shown(wanted)} with given credentials")
    accounts = [
        info.account
        for info in list_accounts(session, identity=identity)
        if account_has_identity(session, info.account, identity, kind)
    ]
    if len(accounts) != 1:
        raise CannotAuthenticate("Cannot authenticate: the identity maps to no single account; set X-Rucio-Account")
    return accounts[0]


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() or None if header[:7].lower() == "bearer " else None


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


def _identity_account(session: Session, identity: str, kind: IdentityType) -> str:
    account = account_for_identity(session, identity, kind)
    if touch_status(session, account) != AccountStatus.ACTIVE:
        raise CannotAuthenticate(f"Cannot authenticate: account {account} is not active")
    return account


def current_account() -> str:
    """Authenticate this request from its token, bearer JWT or proxy DN, in the request's first unit of work."""
    token = request.headers.get("X-Rucio-Auth-Token") or _bearer()
    verifier: OIDCVerifier | None = current_app.extensions.get(_OIDC_KEY)
    if token and verifier is not None and _looks_like_jwt(token):
        identity = verifier.identity(token)
        return in_first_unit(lambda session: _identity_account(session, identity, IdentityType.OIDC))
    if token:
        return in_first_unit(lambda session: validate_token(session, token).account)
    dn = x509_dn()
    if dn:
        return in_first_unit(lambda session: _identity_account(session, dn, IdentityType.X509))
    raise MalformedRequest("Token must be set.")


def _authenticate() -> None:
    g.request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or getattr(view, "public", False):
        return
    g.issuer = current_account()
