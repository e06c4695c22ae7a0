"""Rucio's OIDC browser login (``/auth/oidc``, ``/auth/oidc_redirect``, ``/auth/oidc_code``) against
a real provider on 127.0.0.1 (tests/integration/api/oidc_provider.py): polling and pasted-code
logins, one-time fetches, the nonce, unmapped identities, and the stock client's ``auth_type = oidc``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from datamgmt.api.app import create_app
from datamgmt.config import Config
from datamgmt.core.account import add_account
from datamgmt.core.identity import add_account_identity
from tests.integration.api.oidc_provider import Provider, running_provider
from tests.servers.endpoints import free_ports

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent
CLIENT_ID, SECRET, AUDIENCE = "datamgmt-web", "client-secret", "datamgmt"


@dataclass
class Deployment:
    url: str
    provider: Provider


@contextmanager
def running_deployment(db: str, session: Session, **settings: str) -> Iterator[Deployment]:
    """Our server on 127.0.0.1 trusting a fresh provider, alice's OIDC identity mapped; ``settings``:
    more ``DATAMGMT_*`` variables."""
    with running_provider(CLIENT_ID, SECRET, AUDIENCE) as provider:
        port = free_ports(1)[0]
        url = f"http://127.0.0.1:{port}"
        environ = {
            **os.environ,
            "DATAMGMT_AUTH_OIDC_ISSUER": provider.url,
            "DATAMGMT_AUTH_OIDC_JWKS_URL": f"{provider.url}/jwks",
            "DATAMGMT_AUTH_OIDC_AUDIENCE": AUDIENCE,
            "DATAMGMT_AUTH_OIDC_CLIENT_ID": CLIENT_ID,
            "DATAMGMT_AUTH_OIDC_CLIENT_SECRET": SECRET,
            "DATAMGMT_API_BASE_URL": url,
            **settings,
        }
        add_account(session, "alice", "USER")
        add_account_identity(session, f"alice@{provider.url}", "OIDC", "alice")
        session.commit()
        server = make_server(
            "127.0.0.1", port, create_app(Config(environ=environ), database_url=db), threaded=True
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Deployment(url, provider)
        finally:
            server.shutdown()
            thread.join(timeout=10)


@pytest.fixture
def deployment(db: str, session: Session, root: str) -> Iterator[Deployment]:
    with running_deployment(db, session) as running:
        yield running


def start_login(deployment: Deployment, polling: bool = True, **headers: str) -> str:
    answer = requests.get(
        f"{deployment.url}/auth/oidc",
        timeout=30,
        headers={"X-Rucio-Account": "alice", "X-Rucio-Client-Authorize-Polling": str(polling), **headers},
    )
    assert answer.status_code == 200, answer.headers
    return answer.headers["X-Rucio-OIDC-Auth-URL"]


def fetch_token(deployment: Deployment, code: str) -> requests.Response:
    return requests.get(
        f"{deployment.url}/auth/oidc_redirect?{code}",
        headers={"X-Rucio-Client-Fetch-Token": "True"},
        timeout=30,
    )


def whoami_of(deployment: Deployment, token: str) -> str:
    return requests.get(
        f"{deployment.url}/accounts/whoami", headers={"X-Rucio-Auth-Token": token}, timeout=30
    ).json()["account"]


def test_polling_login_gives_the_client_a_token_once(deployment: Deployment) -> None:
    auth_url = start_login(deployment)
    assert auth_url.startswith(f"{deployment.url}/auth/oidc_redirect?")
    code = auth_url.split("?", 1)[1]
    early = fetch_token(deployment, code)
    assert (early.status_code, early.headers["ExceptionClass"]) == (401, "CannotAuthenticate")
    browser = requests.get(auth_url, timeout=30)  # our 303 → the provider → back to /auth/oidc_code
    assert browser.status_code == 200 and "Login granted" in browser.text and "alice" in browser.text
    assert [r.status_code for r in browser.history] == [303, 302]
    fetched = fetch_token(deployment, code)
    assert fetched.status_code == 200 and fetched.headers["X-Rucio-Auth-Token-Expires"]
    assert whoami_of(deployment, fetched.headers["X-Rucio-Auth-Token"]) == "alice"
    assert fetch_token(deployment, code).status_code == 401, "a login yields one token"


def test_pasted_code_login(deployment: Deployment) -> None:
    auth_url = start_login(deployment, polling=False)
    page = requests.get(auth_url, timeout=30).text
    fetch_code = re.search(r"paste this code into your terminal: (\S+)</p>", page).group(1)  # type: ignore[union-attr]
    assert fetch_token(deployment, auth_url.split("?", 1)[1]).status_code == 401, (
        "the printed URL alone fetches nothing"
    )
    fetched = fetch_token(deployment, fetch_code)
    assert whoami_of(deployment, fetched.headers["X-Rucio-Auth-Token"]) == "alice"


def test_auto_gives_the_provider_url_itself(deployment: Deployment) -> None:
    assert start_login(deployment, **{"X-Rucio-Client-Authorize-Auto": "True"}).startswith(
        f"{deployment.provider.url}/authorize?"
    )


def test_a_foreign_nonce_or_unmapped_identity_or_other_issuer_is_refused(deployment: Deployment) -> None:
    deployment.provider.wrong_nonce = True
    refused = requests.get(start_login(deployment), timeout=30)
    assert (refused.status_code, refused.headers["ExceptionClass"]) == (401, "CannotAuthenticate")
    assert "nonce" in refused.headers["ExceptionMessage"]
    deployment.provider.wrong_nonce, deployment.provider.subject = False, "mallory"
    unmapped = requests.get(start_login(deployment), timeout=30)
    assert (unmapped.status_code, unmapped.headers["ExceptionClass"]) == (401, "CannotAuthenticate")
    other = requests.get(
        f"{deployment.url}/auth/oidc",
        headers={"X-Rucio-Client-Authorize-Issuer": "https://evil.example"},
        timeout=30,
    )
    assert other.status_code == 401
    bad_state = requests.get(f"{deployment.url}/auth/oidc_code?code=x&state=forged", timeout=30)
    assert bad_state.status_code == 401
    bad_account = requests.get(
        f"{deployment.url}/auth/oidc", headers={"X-Rucio-Account": "x" * 300}, timeout=30
    )
    assert bad_account.status_code == 400


def test_a_provider_that_does_not_answer_is_503(db: str, root: str) -> None:
    dead = f"http://127.0.0.1:{free_ports(1)[0]}"
    environ = {
        **os.environ,
        "DATAMGMT_AUTH_OIDC_ISSUER": dead,
        "DATAMGMT_AUTH_OIDC_JWKS_URL": f"{dead}/jwks",
        "DATAMGMT_AUTH_OIDC_AUDIENCE": AUDIENCE,
        "DATAMGMT_AUTH_OIDC_CLIENT_ID": CLIENT_ID,
        "DATAMGMT_API_BASE_URL": "http://127.0.0.1:1",
    }
    response = create_app(Config(environ=environ), database_url=db).test_client().get("/auth/oidc")
    assert (response.status_code, response.headers["ExceptionClass"]) == (503, "ServiceUnavailable")


@pytest.mark.parametrize("path", ["/auth/oidc", "/auth/oidc_code?code=c&state=s", "/auth/oidc_redirect?code"])
def test_without_oidc_configured_the_routes_answer_401(db: str, root: str, path: str) -> None:
    response = create_app(database_url=db).test_client().get(path)
    assert (response.status_code, response.headers["ExceptionClass"]) == (401, "CannotAuthenticate")


def test_stock_client_logs_in_by_browser(deployment: Deployment, tmp_path: Path) -> None:
    """rucio-clients 41 with ``auth_type = oidc`` and polling: it prints the URL, we play the browser."""
    if not (BIN / "rucio").exists():
        pytest.skip("rucio-clients is not installed")
    config = tmp_path / "rucio.cfg"
    config.write_text(
        f"[client]\nrucio_host = {deployment.url}\nauth_host = {deployment.url}\nauth_type = oidc\n"
        f"account = alice\noidc_polling = True\nauth_token_file_path = {tmp_path / 'token'}\n"
    )
    env = {**os.environ, "RUCIO_CONFIG": str(config), "HOME": str(tmp_path), "RUCIO_ACCOUNT": "alice"}
    process = subprocess.Popen(
        [str(BIN / "rucio"), "whoami"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    output = []
    for line in process.stdout:
        output.append(line)
        if "/auth/oidc_redirect?" in line:
            assert requests.get(line.strip(), timeout=30).status_code == 200
            break
    rest, _ = process.communicate(timeout=120)
    assert process.returncode == 0, "".join(output) + rest
    assert "alice" in rest
