"""Signing in and out of the web interface, and the CSRF token every form carries.

The Flask session cookie is signed (``[web] secret``), HttpOnly, SameSite=Strict, and Secure
whenever the request came over TLS.  It holds the API token of the signed-in account and a
random CSRF token; the token is re-validated on every page, so revocation is immediate.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, abort, request, session
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask.wrappers import Request

from datamgmt.api.context import unit_of_work
from datamgmt.core.account import is_admin
from datamgmt.core.token import validate_token
from datamgmt.exceptions import CannotAuthenticate

TOKEN_KEY = "token"
CSRF_KEY = "csrf"


class BrowserSessions(SecureCookieSessionInterface):
    """Session cookies marked Secure whenever the request itself was secure (TLS, or a trusted proxy's)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        # The cookie lives under /ui only: elsewhere there is none to read, and building its
        # signer would cost every API call.
        if not request.path.startswith(app.config["SESSION_COOKIE_PATH"]):
            return self.make_null_session(app)
        return super().open_session(app, request)


def install_sessions(app: Flask) -> None:
    app.session_interface = BrowserSessions()
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_PATH="/ui"
    )


def sign_in(token: str) -> None:
    session.clear()
    session[TOKEN_KEY] = token
    session[CSRF_KEY] = secrets.token_urlsafe(32)


def sign_out() -> None:
    session.clear()


def signed_in_account() -> tuple[str, bool] | None:
    """The account whose token the cookie holds, if that token is still valid, and whether it is
    an admin (pages show admin links by it; every admin action still asks the policy)."""
    token = session.get(TOKEN_KEY)
    if not token:
        return None
    try:
        with unit_of_work(read_only=True) as catalogue:
            account = validate_token(catalogue, token).account
            return account, is_admin(catalogue, account)
    except CannotAuthenticate:
        session.clear()
        return None


def csrf_token() -> str:
    """This session's CSRF token (a fresh one for a visitor who has not signed in yet)."""
    if CSRF_KEY not in session:
        session[CSRF_KEY] = secrets.token_urlsafe(32)
    token: str = session[CSRF_KEY]
    return token


def check_csrf() -> None:
    """Refuse a state-changing request whose form does not carry this session's CSRF token."""
    expected = session.get(CSRF_KEY)
    sent = request.form.get("csrf_token", "")
    if not expected or not hmac.compare_digest(str(expected), sent):
        abort(400, description="The form is missing its CSRF token, or it has expired: reload the page.")
