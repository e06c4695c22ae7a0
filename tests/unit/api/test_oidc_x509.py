"""OIDC bearer JWTs checked against a JWKS served on loopback, and X.509 DNs from a proxy header."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.api.app import create_app
from datamgmt.config import Config
from datamgmt.core.account import add_account
from datamgmt.core.identity import add_account_identity

ISSUER = "https://idp.example.org"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    body = json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/jwks"
    server.shutdown()


@pytest.fixture
def client(db: str, root: str, session: Session, jwks_url: str, tmp_path: Path) -> FlaskClient:
    environ = {
        "DATAMGMT_AUTH_OIDC_ISSUER": ISSUER,
        "DATAMGMT_AUTH_OIDC_JWKS_URL": jwks_url,
        "DATAMGMT_AUTH_OIDC_AUDIENCE": "datamgmt",
        "DATAMGMT_AUTH_X509_HEADER": "X-SSL-Client-S-DN",
    }
    add_account(session, "alice", "USER")
    add_account_identity(session, f"alice-sub@{ISSUER}", "OIDC", "alice")
    add_account_identity(session, "CN=Alice,O=Example", "X509", "alice")
    session.commit()
    return create_app(Config(path=tmp_path / "none.cfg", environ=environ), database_url=db).test_client()


def _token(key: rsa.RSAPrivateKey = KEY, **claims: object) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "sub": "alice-sub", "aud": "datamgmt", "iat": now, "exp": now + 300, **claims}
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "k1"})


def test_valid_bearer_maps_sub_at_iss_to_the_account(client: FlaskClient) -> None:
    response = client.get("/accounts/whoami", headers={"Authorization": f"Bearer {_token()}"})
    assert response.status_code == 303 and response.headers["Location"] == "alice"
    # The stock client sends an OIDC token in X-Rucio-Auth-Token.
    assert (
        client.get("/accounts/whoami", headers={"X-Rucio-Auth-Token": _token()}).headers["Location"]
        == "alice"
    )


@pytest.mark.parametrize(
    "token",
    [
        _token(OTHER_KEY),
        _token(exp=int(time.time()) - 10),
        _token(iss="https://evil.example.org"),
        _token(aud="someone-else"),
        _token(sub="unmapped"),
    ],
    ids=["wrong-key", "expired", "wrong-issuer", "wrong-audience", "unmapped-identity"],
)
def test_bad_bearers_are_401(client: FlaskClient, token: str) -> None:
    response = client.get("/rses/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["ExceptionClass"] == "CannotAuthenticate"


def test_x509_dn_from_the_trusted_header(client: FlaskClient) -> None:
    login = client.get("/auth/x509", headers={"X-SSL-Client-S-DN": "CN=Alice,O=Example"})
    assert login.status_code == 200 and login.headers["X-Rucio-Auth-Account"] == "alice"
    token = login.headers["X-Rucio-Auth-Token"]
    assert (
        client.get("/accounts/whoami", headers={"X-Rucio-Auth-Token": token}).headers["Location"] == "alice"
    )
    direct = client.get("/accounts/whoami", headers={"X-SSL-Client-S-DN": "CN=Alice,O=Example"})
    assert direct.headers["Location"] == "alice"
    assert client.get("/auth/x509", headers={"X-SSL-Client-S-DN": "CN=Mallory"}).status_code == 401


def test_x509_webui_is_rucios_same_certificate_login(client: FlaskClient) -> None:
    login = client.get("/auth/x509/webui", headers={"X-SSL-Client-S-DN": "CN=Alice,O=Example"})
    assert login.status_code == 200 and login.headers["X-Rucio-Auth-Account"] == "alice"
    assert client.get("/auth/x509/webui", headers={"X-SSL-Client-S-DN": "CN=Mallory"}).status_code == 401


def test_x509_header_is_ignored_unless_configured(db: str, root: str) -> None:
    client = create_app(database_url=db).test_client()
    response = client.get("/accounts/whoami", headers={"X-SSL-Client-S-DN": "CN=Alice,O=Example"})
    assert response.status_code == 401  # no token: CannotAuthenticate
