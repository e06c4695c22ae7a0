"""``/auth/oidc_refresh`` against a real provider on 127.0.0.1 (tests/integration/api/oidc_provider.py):
Rucio's renewal rules, the refusals, the refresh token kept sealed, and the stock client's
``auth_oidc_refresh_active``."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from datamgmt.core.account import update_account
from datamgmt.core.db.constants import IdentityType
from datamgmt.core.db.models import Token
from datamgmt.core.db.types import utcnow
from datamgmt.core.identity import del_account_identity
from datamgmt.core.token import issue_token, set_token_cache, token_digest
from tests.integration.api.test_oidc_login import (
    BIN,
    Deployment,
    fetch_token,
    running_deployment,
    start_login,
    whoami_of,
)

pytestmark = pytest.mark.integration
OFFLINE = "openid profile offline_access"


@pytest.fixture
def deployment(db: str, session: Session, root: str) -> Iterator[Deployment]:
    # Sessions of 15 minutes: the stock client renews a token in its last 20 minutes. No token
    # cache (the process's, which this in-process server shares): the tests change token rows
    # behind the server's back.
    set_token_cache(None)
    try:
        with running_deployment(db, session, DATAMGMT_AUTH_TOKEN_LIFETIME="900") as running:
            yield running
    finally:
        set_token_cache(None, from_config=True)


def _login(deployment: Deployment, scope: str = OFFLINE, **headers: str) -> str:
    auth_url = start_login(deployment, **{"X-Rucio-Client-Authorize-Scope": scope, **headers})
    assert requests.get(auth_url, timeout=30).status_code == 200
    return fetch_token(deployment, auth_url.split("?", 1)[1]).headers["X-Rucio-Auth-Token"]


def _refresh(deployment: Deployment, token: str, account: str = "alice") -> requests.Response:
    return requests.get(
        f"{deployment.url}/auth/oidc_refresh",
        timeout=30,
        headers={"X-Rucio-Auth-Token": token, "X-Rucio-Account": account},
    )


def _renewed(response: requests.Response) -> str:
    """The token a refresh handed back ('' for none), its expiry checked to be Rucio's epoch seconds."""
    assert response.status_code == 200, response.headers
    token, expires = response.headers["X-Rucio-Auth-Token"], response.headers["X-Rucio-Auth-Token-Expires"]
    assert bool(token) == bool(expires)
    if token:
        assert 0 < int(expires) - time.time() <= 900 + 5
    return token


def _refused(response: requests.Response) -> str:
    assert (response.status_code, response.headers.get("ExceptionClass")) == (401, "CannotAuthorize")
    return response.headers["ExceptionMessage"]


def _age(session: Session, token: str, minutes: int = 6) -> None:
    """Make ``token`` issued ``minutes`` ago: Rucio hands a token younger than five minutes back as it is."""
    session.execute(
        update(Token)
        .where(Token.token_hash == token_digest(token))
        .values(created_at=utcnow() - timedelta(minutes=minutes))
    )
    session.commit()


def test_the_provider_renews_an_offline_session(deployment: Deployment, session: Session) -> None:
    first = _login(deployment)
    assert _renewed(_refresh(deployment, first)) == first, "a fresh token comes back as it is"
    assert deployment.provider.refreshes == 0
    _age(session, first)
    second = _renewed(_refresh(deployment, first))
    assert second not in ("", first) and deployment.provider.refreshes == 1
    assert whoami_of(deployment, second) == "alice"
    assert whoami_of(deployment, first) == "alice", "the old token lives until it expires"
    assert _renewed(_refresh(deployment, first)) == second, "a renewed token gets its successor"
    assert deployment.provider.refreshes == 1
    _age(session, second)
    third = _renewed(_refresh(deployment, second))
    assert third not in ("", first, second) and deployment.provider.refreshes == 2
    assert _renewed(_refresh(deployment, first)) == third, "along the whole chain"
    session.rollback()
    stored = " ".join(value or "" for value in session.scalars(select(Token.refresh_token)))
    assert deployment.provider.refresh_tokens and stored
    assert not any(live in stored for live in deployment.provider.refresh_tokens), "kept sealed"


def test_without_offline_access_nothing_is_renewed(deployment: Deployment, session: Session) -> None:
    token = _login(deployment, scope="openid profile")
    _age(session, token)
    assert _renewed(_refresh(deployment, token)) == ""
    assert deployment.provider.refreshes == 0


def test_refusals(deployment: Deployment, session: Session) -> None:
    bare = requests.get(
        f"{deployment.url}/auth/oidc_refresh", headers={"X-Rucio-Account": "alice"}, timeout=30
    )
    assert _refused(bare) == "Cannot authorize token request."
    userpass = issue_token(session, "root", "root", IdentityType.USERPASS, 600).token
    session.commit()
    assert _renewed(_refresh(deployment, userpass, "root")) == "", "a non-OIDC session has nothing to renew"
    assert "unknown token" in _refused(_refresh(deployment, "alice-forged"))
    token = _login(deployment)
    _age(session, token)
    assert "not one of the account's" in _refused(_refresh(deployment, token, "root"))
    session.execute(
        update(Token)
        .where(Token.token_hash == token_digest(token))
        .values(expired_at=utcnow() - timedelta(1))
    )
    session.commit()
    assert "expired" in _refused(_refresh(deployment, token))
    assert deployment.provider.refreshes == 0


def test_suspension_or_identity_removal_ends_renewal(deployment: Deployment, session: Session) -> None:
    token = _login(deployment)
    _age(session, token)
    update_account(session, "alice", "status", "SUSPENDED")
    session.commit()
    _refused(_refresh(deployment, token))
    update_account(session, "alice", "status", "ACTIVE")
    session.commit()
    _refused(_refresh(deployment, token))  # suspension deleted the session, refresh token and all
    token = _login(deployment)
    _age(session, token)
    del_account_identity(session, f"alice@{deployment.provider.url}", "OIDC", "alice")
    session.commit()
    _refused(_refresh(deployment, token))
    assert deployment.provider.refreshes == 0


def test_a_refusal_by_the_provider_or_the_sessions_end(deployment: Deployment, session: Session) -> None:
    token = _login(deployment)
    _age(session, token)
    deployment.provider.refresh_tokens.clear()  # the user withdrew offline access at the provider
    assert "refused the refresh" in _refused(_refresh(deployment, token))
    assert _renewed(_refresh(deployment, token)) == "", "the refresh token is forgotten"
    assert whoami_of(deployment, token) == "alice", "the session itself runs to its end"
    short = _login(deployment, **{"X-Rucio-Client-Authorize-Refresh-Lifetime": "1"})
    until = session.scalar(select(Token.refresh_until).where(Token.token_hash == token_digest(short)))
    assert until is not None and abs(until - utcnow() - timedelta(hours=1)) < timedelta(minutes=1)
    session.execute(
        update(Token).where(Token.token_hash == token_digest(short)).values(refresh_until=utcnow())
    )
    session.commit()
    _age(session, short)
    assert _renewed(_refresh(deployment, short)) == "", "renewable for the hours asked, then log in again"


def test_a_provider_in_trouble_is_503_and_the_session_stays_renewable(
    deployment: Deployment, session: Session
) -> None:
    token = _login(deployment)
    _age(session, token)
    deployment.provider.failing = True
    failed = _refresh(deployment, token)
    assert (failed.status_code, failed.headers["ExceptionClass"]) == (503, "ServiceUnavailable")
    deployment.provider.failing = False
    assert _renewed(_refresh(deployment, token)) not in ("", token)
    assert deployment.provider.refreshes == 1


def test_stock_client_renews_its_token(deployment: Deployment, session: Session, tmp_path: Path) -> None:
    """rucio-clients 41 with ``auth_oidc_refresh_active``: right after its login it asks
    ``/auth/oidc_refresh`` for the expiry; in a token's last 20 minutes it renews it."""
    if not (BIN / "rucio").exists():
        pytest.skip("rucio-clients is not installed")
    token_file = tmp_path / "token"
    config = tmp_path / "rucio.cfg"
    config.write_text(
        f"[client]\nrucio_host = {deployment.url}\nauth_host = {deployment.url}\nauth_type = oidc\n"
        f"account = alice\noidc_polling = True\noidc_scope = {OFFLINE}\n"
        f"auth_oidc_refresh_active = True\nauth_token_file_path = {token_file}\n"
    )
    env = {**os.environ, "RUCIO_CONFIG": str(config), "HOME": str(tmp_path), "RUCIO_ACCOUNT": "alice"}
    process = subprocess.Popen(
        [str(BIN / "rucio"), "whoami"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "/auth/oidc_redirect?" in line:
            assert requests.get(line.strip(), timeout=30).status_code == 200
            break
    rest, _ = process.communicate(timeout=120)
    assert process.returncode == 0 and "alice" in rest, rest
    first = token_file.read_text().strip()
    epoch_files = [path for path in tmp_path.iterdir() if path.name.startswith("auth_token_exp")]
    assert [int(path.read_text()) > time.time() for path in epoch_files] == [True], "the expiry it asked for"
    _age(session, first)
    again = subprocess.run(
        [str(BIN / "rucio"), "whoami"], env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0 and "alice" in again.stdout, again.stdout + again.stderr
    renewed = token_file.read_text().strip()
    assert renewed != first and deployment.provider.refreshes == 1
    assert whoami_of(deployment, renewed) == "alice"
