"""OIDC sign-in in the browser: the authorization code flow with PKCE.

The provider's access token is checked exactly as a bearer token over REST is
(:class:`datamgmt.api.oidc.OIDCVerifier`: issuer, published keys, audience) and its
``sub@iss`` identity must map to an account, as for the API; the session then holds an
ordinary API token, so everything after sign-in is the same as with a password.  The
``state`` ties the callback to the browser that started it, PKCE ties the code to it, and the
redirect URI comes from ``[api] base_url``, never from the request's Host header.

The flow's state and PKCE verifier travel in a cookie of their own, signed, HttpOnly, limited
to the callback's path and ten minutes, and SameSite=Lax: the session cookie is Strict, so a
browser does not send it on the provider's cross-site redirect back to us.  For the same reason
the callback answers with a page that moves on to the dashboard by itself: that navigation
starts on our site, so the new Strict session cookie goes with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import urlencode

import requests
from flask import current_app, make_response, redirect, render_template, request, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from datamgmt.api.auth import configured_oidc_verifier
from datamgmt.api.login import failed, issue, refuse_if_locked
from datamgmt.api.v1.publishing import base_url
from datamgmt.config import get_config
from datamgmt.core.db.constants import IdentityType
from datamgmt.exceptions import CannotAuthenticate, ServiceUnavailable
from datamgmt.web.common import bp
from datamgmt.web.session import sign_in

FLOW_COOKIE = "datamgmt_oidc_flow"
FLOW_SECONDS = 600
TOKEN_TIMEOUT_SECONDS = 10


def oidc_enabled() -> bool:
    """On when the API checks OIDC tokens and [web] names this server's client at the provider."""
    config = get_config()
    return configured_oidc_verifier() is not None and all(
        config.get("web", option) for option in ("oidc_client_id", "oidc_authorize_url", "oidc_token_url")
    )


def _redirect_uri() -> str:
    return f"{base_url()}{url_for('ui.oidc_callback')}"


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@bp.get("/login/oidc")
def oidc_start() -> Response:
    """Send the browser to the provider with a fresh state and PKCE challenge."""
    if not oidc_enabled():
        raise CannotAuthenticate("OIDC sign-in is not configured on this server")
    config = get_config()
    state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(48)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": config.get("web", "oidc_client_id"),
            "redirect_uri": _redirect_uri(),
            "scope": config.get("web", "oidc_scope"),
            "state": state,
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    response = redirect(f"{config.get('web', 'oidc_authorize_url')}?{query}")
    response.set_cookie(
        FLOW_COOKIE,
        _signer().dumps({"state": state, "verifier": verifier}),
        max_age=FLOW_SECONDS,
        path=url_for("ui.oidc_callback"),
        httponly=True,
        samesite="Lax",
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure,
    )
    return response


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="datamgmt-oidc-flow")


def _flow() -> dict[str, str] | None:
    try:
        flow = _signer().loads(request.cookies.get(FLOW_COOKIE, ""), max_age=FLOW_SECONDS)
    except BadSignature:
        return None
    return flow if isinstance(flow, dict) else None


@bp.get("/login/oidc/callback")
def oidc_callback() -> Response:
    """Exchange the code for tokens, check the access token as the API does, and sign in."""
    flow, verifier = _flow(), configured_oidc_verifier()
    if verifier is None or not oidc_enabled() or not flow:
        raise CannotAuthenticate("Cannot authenticate: no OIDC sign-in was started in this browser")
    if not hmac.compare_digest(str(flow["state"]), request.args.get("state", "")):
        raise CannotAuthenticate("Cannot authenticate: the OIDC answer does not belong to this sign-in")
    if "code" not in request.args:
        raise CannotAuthenticate(
            f"Cannot authenticate: the provider said {request.args.get('error', 'no')!s:.100}"
        )
    refuse_if_locked(None)
    access_token = _exchange(request.args["code"], str(flow["verifier"]))
    try:
        identity = verifier.identity(access_token)
    except CannotAuthenticate as exc:
        raise failed(None, exc) from exc
    sign_in(issue(identity, IdentityType.OIDC, None).token)
    response = make_response(render_template("signed_in.html"))
    response.delete_cookie(FLOW_COOKIE, path=url_for("ui.oidc_callback"))  # one sign-in per flow
    return response


def _exchange(code: str, code_verifier: str) -> str:
    """The access token for ``code`` from the provider's token endpoint."""
    config = get_config()
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": _redirect_uri(),
        "client_id": config.get("web", "oidc_client_id"),
        "code_verifier": code_verifier,
    }
    secret = config.get("web", "oidc_client_secret")
    auth = (config.get("web", "oidc_client_id"), secret) if secret else None
    try:
        answer = requests.post(
            config.get("web", "oidc_token_url"), data=form, auth=auth, timeout=TOKEN_TIMEOUT_SECONDS
        )
        token = answer.json().get("access_token") if answer.ok else None
    except (requests.RequestException, ValueError) as exc:
        raise ServiceUnavailable(
            f"The OIDC provider's token endpoint did not answer: {type(exc).__name__}"
        ) from exc
    if not isinstance(token, str) or not token:
        raise CannotAuthenticate(
            f"Cannot authenticate: the OIDC provider refused the code (HTTP {answer.status_code})"
        )
    return token
