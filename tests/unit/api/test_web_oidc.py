"""OIDC sign-in in the browser: authorization code with PKCE against a provider on loopback whose
access tokens the API's own OIDC check verifies."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.api.app import create_app
from datamgmt.config import reset_config
from datamgmt.core.account import add_account
from datamgmt.core.identity import add_account_identity
from tests.security.test_oidc_x509 import ISSUER, KEY

BASE = "https://data.example.org"


class Provider(ThreadingHTTPServer):
    """Serves its JWKS, an authorization page whose "Agree" link returns a code, and a token endpoint that
    trades ``good-code`` for an access token of ``subject``, but only with the PKCE verifier of the
    challenge it was shown.  ``host`` names it in its URLs (``localhost`` is another site than
    ``127.0.0.1`` to a browser)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://{host}:{self.server_port}"
        self.challenge = ""
        self.subject = "alice-sub"
        self.exchanges: list[dict[str, list[str]]] = []


class _Handler(BaseHTTPRequestHandler):
    server: Provider

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.startswith(
            "/authorize?"
        ):  # a page on the provider's site: "Agree" goes back with a code
            query = {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}
            self.server.challenge = query["code_challenge"]
            back = f"{query['redirect_uri']}?{urlencode({'code': 'good-code', 'state': query['state']})}"
            page = f'<!doctype html><title>Provider</title><a href="{html.escape(back)}">Agree</a>'.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
        self._send(200, {"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]})

    def do_POST(self) -> None:  # noqa: N802
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        self.server.exchanges.append(form)
        digest = hashlib.sha256(form.get("code_verifier", [""])[0].encode()).digest()
        pkce = base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == self.server.challenge
        if form.get("code") != ["good-code"] or not pkce:
            self._send(400, {"error": "invalid_grant"})
            return
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": self.server.subject, "aud": "datamgmt", "iat": now, "exp": now + 300}
        self._send(
            200,
            {
                "access_token": jwt.encode(claims, KEY, algorithm="RS256", headers={"kid": "k1"}),
                "token_type": "Bearer",
            },
        )

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[Provider]:
    server = Provider()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def oidc_client(
    db: str, root: str, session: Session, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FlaskClient]:
    add_account(session, "alice", "USER")
    add_account_identity(session, f"alice-sub@{ISSUER}", "OIDC", "alice")
    session.commit()
    settings = {
        "AUTH_OIDC_ISSUER": ISSUER,
        "AUTH_OIDC_JWKS_URL": f"{provider.url}/jwks",
        "AUTH_OIDC_AUDIENCE": "datamgmt",
        "WEB_OIDC_CLIENT_ID": "datamgmt-web",
        "WEB_OIDC_AUTHORIZE_URL": "https://idp.example.org/authorize",
        "WEB_OIDC_TOKEN_URL": f"{provider.url}/token",
        "API_BASE_URL": BASE,
    }
    for name, value in settings.items():
        monkeypatch.setenv(f"DATAMGMT_{name}", value)
    reset_config()
    yield create_app(database_url=db).test_client()
    monkeypatch.undo()
    reset_config()


def start(client: FlaskClient, provider: Provider) -> dict[str, str]:
    """Follow the sign-in link to the provider; returns the authorization request's parameters."""
    assert "Sign in with your organisation (OIDC)" in client.get("/ui/login").get_data(as_text=True)
    response = client.get("/ui/login/oidc")
    assert response.status_code == 302
    flow_cookie = response.headers["Set-Cookie"]
    assert (
        "HttpOnly" in flow_cookie
        and "SameSite=Lax" in flow_cookie
        and "Path=/ui/login/oidc/callback" in flow_cookie
    )
    target = urlsplit(response.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == "https://idp.example.org/authorize"
    query = {key: values[0] for key, values in parse_qs(target.query).items()}
    provider.challenge = query["code_challenge"]
    return query


def test_oidc_sign_in_with_code_and_pkce(oidc_client: FlaskClient, provider: Provider) -> None:
    query = start(oidc_client, provider)
    assert query["redirect_uri"] == f"{BASE}/ui/login/oidc/callback", "never from the Host header"
    assert query["code_challenge_method"] == "S256" and query["client_id"] == "datamgmt-web"
    done = oidc_client.get(
        "/ui/login/oidc/callback", query_string={"code": "good-code", "state": query["state"]}
    )
    # A page that moves on by itself: the Strict session cookie goes with a navigation from our site.
    assert done.status_code == 200 and '<meta http-equiv="refresh" content="0;url=/ui/">' in done.get_data(
        as_text=True
    )
    cookies = done.headers.getlist("Set-Cookie")
    assert any("SameSite=Strict" in cookie for cookie in cookies), "the session"
    assert any(cookie.startswith("datamgmt_oidc_flow=;") for cookie in cookies), "the flow's cookie is spent"
    page = oidc_client.get("/ui/")
    assert page.status_code == 200 and "<span>alice</span>" in page.get_data(as_text=True)
    replay = oidc_client.get(
        "/ui/login/oidc/callback", query_string={"code": "good-code", "state": query["state"]}
    )
    assert replay.status_code == 401 and len(provider.exchanges) == 1, "a flow signs in once"


def test_a_forged_state_a_bad_code_or_an_unknown_identity_signs_nobody_in(
    oidc_client: FlaskClient, provider: Provider
) -> None:
    query = start(oidc_client, provider)
    forged = oidc_client.get("/ui/login/oidc/callback", query_string={"code": "good-code", "state": "forged"})
    assert forged.status_code == 401 and "does not belong" in forged.get_data(as_text=True)
    assert provider.exchanges == [], "nothing is exchanged for a forged state"
    query = start(oidc_client, provider)
    bad = oidc_client.get("/ui/login/oidc/callback", query_string={"code": "stolen", "state": query["state"]})
    assert bad.status_code == 401 and "refused the code" in bad.get_data(as_text=True)
    provider.subject = "mallory-sub"
    query = start(oidc_client, provider)
    unknown = oidc_client.get(
        "/ui/login/oidc/callback", query_string={"code": "good-code", "state": query["state"]}
    )
    assert unknown.status_code == 401
    assert oidc_client.get("/ui/").status_code == 302, "still signed out"


def test_without_oidc_settings_the_sign_in_page_offers_passwords_only(client: FlaskClient) -> None:
    assert "OIDC" not in client.get("/ui/login").get_data(as_text=True)
    assert client.get("/ui/login/oidc").status_code == 401
