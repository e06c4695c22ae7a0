"""``/auth/oidc*``: Rucio's browser login through the OIDC identity provider (authorization code).

1. ``GET /auth/oidc`` (the client's ``X-Rucio-Client-Authorize-*`` headers) starts a login and
   answers ``X-Rucio-OIDC-Auth-URL``: ``/auth/oidc_redirect?<code>`` on this server, which the
   user opens in a browser (with ``X-Rucio-Client-Authorize-Auto: True``, the provider's URL itself).
2. ``GET /auth/oidc_redirect?<code>`` sends the browser to the provider (303).
3. The provider sends it back to ``GET /auth/oidc_code?code=…&state=…``: we redeem the code at
   the provider's token endpoint, check the ID token (signature by the JWKS cached by kid, issuer,
   our client id as audience, the login's nonce) and map ``sub@iss`` to the account, and the page
   says the login is granted (or shows the code to paste, when the client does not poll).
4. The client fetches its token: ``GET /auth/oidc_redirect?<code>`` with ``X-Rucio-Client-Fetch-Token: True``.
5. ``GET /auth/oidc_refresh`` renews a session whose login asked for ``offline_access``, with the
   provider's refresh token kept server-side (core/oidc_refresh.py says when and how); the new
   token and its expiry (seconds since the epoch, as Rucio sends it here) come back in headers, both
   empty when there is nothing to renew. A dead token, or one of another account, is 401 ``CannotAuthorize``.

The provider's endpoints come from its discovery document (``<issuer>/.well-known/openid-configuration``);
our redirect URI is ``[api] base_url`` + ``/auth/oidc_code``, never taken from the request.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from flask import Blueprint, Response, current_app, redirect, request
from markupsafe import escape
from werkzeug.wrappers import Response as BaseResponse

from datamgmt.api.auth import account_for_identity, oidc_client, oidc_verifier, public
from datamgmt.api.context import unit_of_work
from datamgmt.api.oidc import identity_of
from datamgmt.api.openapi import doc
from datamgmt.api.streaming import check_accept, rfc1123
from datamgmt.core import oidc_refresh, oidc_request
from datamgmt.core.db.constants import IdentityType
from datamgmt.core.token import IssuedToken, issue_token
from datamgmt.core.validation import account_name, shown
from datamgmt.exceptions import CannotAuthenticate, CannotAuthorize, ServiceUnavailable

bp = Blueprint("auth_oidc", __name__, url_prefix="/auth")

_NO_CACHE = {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate", "Pragma": "no-cache"}
_EPOCH = datetime(1970, 1, 1)
_discovery: dict[str, dict[str, Any]] = {}
_discovery_lock = threading.Lock()


def _provider(issuer: str) -> dict[str, Any]:
    """The provider's discovery document, fetched once per process."""
    with _discovery_lock:
        if issuer not in _discovery:
            try:
                answer = requests.get(issuer.rstrip("/") + "/.well-known/openid-configuration", timeout=10)
                answer.raise_for_status()
                _discovery[issuer] = answer.json()
            except (requests.RequestException, ValueError) as exc:
                raise _unavailable(exc) from exc
        return _discovery[issuer]


def _unavailable(exc: Exception) -> ServiceUnavailable:
    return ServiceUnavailable(f"The identity provider is unavailable ({type(exc).__name__}); retry later")


def _flag(header: str) -> bool:
    return request.headers.get(header, "").strip().lower() == "true"


@bp.get("/oidc")
@public
@doc("Start a browser login at the OIDC provider; the URL to open comes back in X-Rucio-OIDC-Auth-URL")
def start() -> Response:
    verifier = oidc_verifier()
    wanted_issuer = request.headers.get("X-Rucio-Client-Authorize-Issuer")
    if wanted_issuer and wanted_issuer.rstrip("/") != verifier.issuer.rstrip("/"):
        raise CannotAuthenticate(
            "Cannot authenticate: this server trusts one identity provider, not the one asked for"
        )
    client = oidc_client()
    scope = request.headers.get("X-Rucio-Client-Authorize-Scope") or client.scope
    started = oidc_request.new_secrets()
    query = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": scope[:1000],
        "state": started.state,
        "nonce": started.nonce,
    }
    audience = request.headers.get("X-Rucio-Client-Authorize-Audience")
    if audience:
        query["audience"] = audience[:1000]
    provider_url = f"{_provider(verifier.issuer)['authorization_endpoint']}?{urlencode(query)}"
    wanted = request.headers.get("X-Rucio-Account")
    with unit_of_work(read_only=False) as session:
        oidc_request.start(
            session,
            started,
            account_name(wanted) if wanted else None,
            _flag("X-Rucio-Client-Authorize-Polling"),
            provider_url,
            _hours_asked(),
        )
    auth_url = (
        provider_url
        if _flag("X-Rucio-Client-Authorize-Auto")
        else (
            client.redirect_uri.removesuffix("/auth/oidc_code") + f"/auth/oidc_redirect?{started.access_code}"
        )
    )
    response = Response(b"", status=200, content_type="application/octet-stream", headers=_NO_CACHE)
    response.headers["X-Rucio-OIDC-Auth-URL"] = auth_url
    return response


@bp.get("/oidc_redirect")
@public
@doc("Send the browser to the provider; with X-Rucio-Client-Fetch-Token: True, the finished login's token")
def redirect_or_fetch() -> BaseResponse:
    code = request.query_string.decode("utf-8", "replace")[:200]
    if not code:
        raise CannotAuthenticate("Cannot authenticate: the login code is missing")
    if not _flag("X-Rucio-Client-Fetch-Token"):
        with unit_of_work(read_only=True) as session:
            target = oidc_request.redirect_url(session, code)
        return redirect(target, code=303)
    client = oidc_client()
    with unit_of_work(read_only=False) as session:
        login = oidc_request.take_authorized(session, code)
        issued = issue_token(
            session,
            login.account,
            login.identity,
            IdentityType.OIDC,
            current_app.config["TOKEN_LIFETIME"],
            ip=_ip(),
        )
        if login.refresh_token is not None:
            hours = min(login.refresh_lifetime or client.refresh_lifetime, client.refresh_lifetime)
            oidc_refresh.keep(session, issued.token, login.refresh_token, timedelta(hours=hours))
    response = Response(b"", status=200, content_type="application/octet-stream", headers=_NO_CACHE)
    response.headers["X-Rucio-Auth-Token"] = issued.token
    response.headers["X-Rucio-Auth-Token-Expires"] = rfc1123(issued.expires_at)
    return response


def _ip() -> str:
    return (request.remote_addr or "")[:39]


def _hours_asked() -> int | None:
    """``X-Rucio-Client-Authorize-Refresh-Lifetime``: the stock client sends ``None`` when unset."""
    hours = request.headers.get("X-Rucio-Client-Authorize-Refresh-Lifetime", "").strip()
    return int(hours) if hours.isdigit() and len(hours) <= 5 and int(hours) > 0 else None


def _token_endpoint(data: dict[str, str]) -> requests.Response:
    """Ask the provider's token endpoint, as our client (outside any transaction)."""
    client = oidc_client()
    endpoint = _provider(oidc_verifier().issuer)["token_endpoint"]
    try:
        return requests.post(endpoint, data=data, auth=(client.client_id, client.secret), timeout=10)
    except requests.RequestException as exc:
        raise _unavailable(exc) from exc


def _redeem(code: str) -> dict[str, Any]:
    """The provider's token answer for an authorization code."""
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": oidc_client().redirect_uri}
    answer = _token_endpoint(data)
    if answer.status_code != 200:
        raise CannotAuthenticate(
            f"Cannot authenticate: the identity provider refused the code ({answer.status_code})"
        )
    return dict(answer.json())


def _sealed_refresh_token(answer: dict[str, Any], redirect_url: str) -> str | None:
    """The provider's refresh token, sealed, when the login asked for ``offline_access`` (the scope the
    provider granted, or else the one we asked): only then did the user agree to be renewed."""
    sealer = oidc_refresh.refresh_sealer(oidc_client().secret)
    refresh_token = answer.get("refresh_token")
    asked = parse_qs(urlsplit(redirect_url).query).get("scope", [""])[0]
    scope = answer.get("scope")
    granted = scope if isinstance(scope, str) else asked
    if sealer is None or not isinstance(refresh_token, str) or "offline_access" not in granted.split():
        return None
    return sealer.seal(refresh_token)


def _page(title: str, text: str, status: int = 200) -> Response:
    body = f"<!doctype html><title>{escape(title)}</title><h1>{escape(title)}</h1><p>{escape(text)}</p>"
    return Response(body, status=status, content_type="text/html; charset=utf-8", headers=_NO_CACHE)


@bp.get("/oidc_code")
@public
@doc("Where the provider sends the browser back (code, state): completes the login")
def code() -> Response:
    state, code = request.args.get("state", ""), request.args.get("code", "")
    if not state or not code:
        raise CannotAuthenticate(
            f"Cannot authenticate: the provider answered {shown(request.args.get('error', 'no code'))}"
        )
    with unit_of_work(read_only=True) as session:
        login = oidc_request.find_by_state(session, state)
        nonce, redirect_url = login.nonce, login.redirect_url
    answer = _redeem(code)
    claims = oidc_verifier().claims(str(answer.get("id_token", "")), audience=oidc_client().client_id)
    if claims.get("nonce") != nonce:
        raise CannotAuthenticate("Cannot authenticate: the ID token does not belong to this login (nonce)")
    identity = identity_of(claims)
    with unit_of_work(read_only=False) as session:
        wanted = oidc_request.find_by_state(session, state).account
        account = account_for_identity(session, identity, IdentityType.OIDC, wanted)
        fetch_code = oidc_request.authorize(
            session, state, identity, account, _sealed_refresh_token(answer, redirect_url)
        )
    if fetch_code is None:
        return _page(
            "Login granted", f"Account {account}: return to your terminal, the client collects its token."
        )
    return _page("Login granted", f"Account {account}: paste this code into your terminal: {fetch_code}")


def _refreshed(answer: oidc_refresh.Answer) -> Response:
    """Rucio's answer: the token and its expiry in seconds since the epoch, both empty for none."""
    response = Response(b"", status=200, content_type="application/octet-stream", headers=_NO_CACHE)
    response.headers["Access-Control-Expose-Headers"] = "X-Rucio-Auth-Token"
    response.headers["X-Rucio-Auth-Token"] = answer.token or ""
    expires = answer.expires_at
    response.headers["X-Rucio-Auth-Token-Expires"] = (
        str(int((expires - _EPOCH).total_seconds())) if answer.token and expires else ""
    )
    return response


def _renewed_at_provider(due: oidc_refresh.Due) -> str | None:
    """The provider's next refresh token for ``due`` (the one sent, when it keeps it), None when it
    refuses it; an ID token in the answer must name the session's identity."""
    answer = _token_endpoint({"grant_type": "refresh_token", "refresh_token": due.refresh_token})
    if answer.status_code >= 500:  # the provider's trouble, not a verdict on the refresh token
        raise ServiceUnavailable(f"The identity provider is unavailable ({answer.status_code}); retry later")
    if answer.status_code != 200:
        return None
    try:
        tokens = dict(answer.json())
    except (ValueError, TypeError) as exc:
        raise _unavailable(exc) from exc
    if "id_token" in tokens:
        claims = oidc_verifier().claims(str(tokens["id_token"]), audience=oidc_client().client_id)
        if identity_of(claims) != due.identity:
            raise CannotAuthorize("Cannot authorize token request: the provider renewed another identity")
    renewed = tokens.get("refresh_token", due.refresh_token)
    return renewed if isinstance(renewed, str) and renewed else due.refresh_token


def _renew(token: str, due: oidc_refresh.Due) -> IssuedToken | None:
    """Renew ``token``'s session at the provider and record it; None when a concurrent request renewed
    it first (the provider then refuses the refresh token it already took)."""
    renewed = _renewed_at_provider(due)
    with unit_of_work(read_only=False) as session:
        if renewed is not None:
            return oidc_refresh.renew(
                session, token, due, renewed, current_app.config["TOKEN_LIFETIME"], _ip()
            )
        refused = oidc_refresh.forget(session, token, due)
    if refused:
        raise CannotAuthorize("Cannot authorize token request: the identity provider refused the refresh")
    return None


@bp.get("/oidc_refresh")
@public
@doc("Renew an OIDC session: the new token and its expiry (epoch seconds) in headers, empty for none")
def refresh() -> Response:
    check_accept("application/octet-stream")
    token, account = request.headers.get("X-Rucio-Auth-Token"), request.headers.get("X-Rucio-Account")
    if not token or not account:
        raise CannotAuthorize("Cannot authorize token request.")
    sealer = oidc_refresh.refresh_sealer(oidc_client().secret)
    for _ in range(2):  # a token renewed by a concurrent request: the second pass hands back its successor
        with unit_of_work(read_only=False) as session:
            step = oidc_refresh.plan(session, token, account, sealer)
        if isinstance(step, oidc_refresh.Answer):
            return _refreshed(step)
        issued = _renew(token, step)
        if issued is not None:
            return _refreshed(oidc_refresh.Answer(issued.token, issued.expires_at))
    return _refreshed(oidc_refresh.Answer())
