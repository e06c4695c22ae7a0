"""OIDC: the audience is required, and unknown key ids cannot make us fetch the JWKS per request
(nor while holding a transaction).  X.509 by proxy header: believed only from the configured
proxies, and a state-changing request authenticated by it alone must be JSON."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from datamgmt.api.app import create_app
from datamgmt.config import Config
from datamgmt.core.account import add_account
from datamgmt.core.identity import add_account_identity

ISSUER = "https://idp.example.org"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
DN = "CN=Alice,O=Example"


class JWKS(ThreadingHTTPServer):
    """Serves one key as ``k1``, counting fetches; ``probe`` runs on each fetch."""

    def __init__(self) -> None:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
        self.body = json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()
        self.fetches = 0
        self.probe = lambda: None
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_port}/jwks"


class _Handler(BaseHTTPRequestHandler):
    server: JWKS

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.fetches += 1
        self.server.probe()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def jwks() -> Iterator[JWKS]:
    server = JWKS()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _config(tmp_path: Path, **options: str) -> Config:
    return Config(
        path=tmp_path / "none.cfg", environ={f"DATAMGMT_AUTH_{k.upper()}": v for k, v in options.items()}
    )


@pytest.fixture
def alice(session: Session, root: str) -> None:
    add_account(session, "alice", "USER")
    add_account_identity(session, f"alice-sub@{ISSUER}", "OIDC", "alice")
    add_account_identity(session, DN, "X509", "alice")
    session.commit()


def _token(kid: str) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "alice-sub", "aud": "datamgmt", "iat": now, "exp": now + 300}
    return jwt.encode(claims, KEY, algorithm="RS256", headers={"kid": kid})


def test_oidc_without_an_audience_is_refused_at_start(db: str, jwks: JWKS, tmp_path: Path) -> None:
    with pytest.raises(Exception, match="oidc_audience"):
        create_app(_config(tmp_path, oidc_issuer=ISSUER, oidc_jwks_url=jwks.url), database_url=db)


def test_unknown_key_ids_cost_one_jwks_fetch_not_one_per_request(
    db: str, alice: None, jwks: JWKS, tmp_path: Path
) -> None:
    client = create_app(
        _config(tmp_path, oidc_issuer=ISSUER, oidc_jwks_url=jwks.url, oidc_audience="datamgmt"),
        database_url=db,
    ).test_client()
    assert (
        client.get("/accounts/whoami", headers={"Authorization": f"Bearer {_token('k1')}"}).status_code == 303
    )
    assert jwks.fetches == 1
    for n in range(25):
        response = client.get("/rses/", headers={"Authorization": f"Bearer {_token(f'invented-{n}')}"})
        assert response.status_code == 401
    assert jwks.fetches <= 2, f"{jwks.fetches} JWKS fetches for 25 unknown key ids"
    assert (
        client.get("/accounts/whoami", headers={"Authorization": f"Bearer {_token('k1')}"}).status_code == 303
    )


def test_the_jwks_is_fetched_outside_any_transaction(
    db: str, alice: None, jwks: JWKS, tmp_path: Path
) -> None:
    if make_url(db).get_backend_name() != "sqlite":
        pytest.skip("the global write lock is SQLite's")
    probes: list[bool] = []

    def probe() -> None:
        other = sqlite3.connect(make_url(db).database, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            probes.append(True)
        except sqlite3.OperationalError:
            probes.append(False)
        finally:
            other.close()

    jwks.probe = probe
    client = create_app(
        _config(tmp_path, oidc_issuer=ISSUER, oidc_jwks_url=jwks.url, oidc_audience="datamgmt"),
        database_url=db,
    ).test_client()
    # A POST opens a write transaction: the first request's JWKS fetch must come before it.
    client.post("/rses/SITE-A", json={}, headers={"Authorization": f"Bearer {_token('k1')}"})
    assert probes == [True]


@pytest.fixture
def x509_client(db: str, alice: None, tmp_path: Path) -> FlaskClient:
    config = _config(tmp_path, x509_header="X-SSL-Client-S-DN", x509_proxies="10.0.0.5")
    return create_app(config, database_url=db).test_client()


def test_the_dn_header_is_believed_only_from_configured_proxies(x509_client: FlaskClient) -> None:
    header = {"X-SSL-Client-S-DN": DN}
    direct = x509_client.get("/auth/x509", headers=header, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert direct.status_code == 401
    assert (
        x509_client.get(
            "/accounts/whoami", headers=header, environ_base={"REMOTE_ADDR": "127.0.0.1"}
        ).status_code
        == 401
    )
    proxied = x509_client.get("/auth/x509", headers=header, environ_base={"REMOTE_ADDR": "10.0.0.5"})
    assert proxied.status_code == 200 and proxied.headers["X-Rucio-Auth-Account"] == "alice"


def test_state_changes_by_certificate_alone_must_be_json(x509_client: FlaskClient) -> None:
    proxy = {"REMOTE_ADDR": "10.0.0.5"}
    header = {"X-SSL-Client-S-DN": DN}
    for content_type in (
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
    ):
        forged = x509_client.post(
            "/accounts/alice/scopes/user.alice",
            data="a=b",
            content_type=content_type,
            headers=header,
            environ_base=proxy,
        )
        assert forged.status_code == 401 and forged.headers["ExceptionClass"] == "CannotAuthenticate", (
            content_type
        )
    bare = x509_client.post("/accounts/alice/scopes/user.alice", headers=header, environ_base=proxy)
    assert bare.status_code == 401
    as_json = x509_client.post(
        "/accounts/alice/scopes/user.alice", json={}, headers=header, environ_base=proxy
    )
    assert as_json.headers.get("ExceptionClass") != "CannotAuthenticate"
    assert x509_client.get("/accounts/whoami", headers=header, environ_base=proxy).status_code == 303
