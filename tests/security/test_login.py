"""Login floods and passwords: scrypt outside the write lock, no user enumeration by timing,
the lockout (429 + Retry-After, shared by every worker), OWASP scrypt cost with re-hashing,
revocation on password change, and a bootstrap that never resets root's password."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from datamgmt.api.app import create_app
from datamgmt.config import Config, reset_config
from datamgmt.core import identity
from datamgmt.core.bootstrap import bootstrap
from datamgmt.core.db.constants import IdentityType
from datamgmt.core.db.models import Identity
from datamgmt.core.token import issue_token, validate_token
from datamgmt.exceptions import CannotAuthenticate
from tests.conftest import ROOT_PASSWORD, SUITE_SCRYPT_N
from tests.unit.api.conftest import make_account


def _login(client: FlaskClient, username: str, password: str, source: str = "192.0.2.1"):
    return client.get(
        "/auth/userpass",
        headers={"X-Rucio-Username": username, "X-Rucio-Password": password},
        environ_base={"REMOTE_ADDR": source},
    )


@pytest.fixture
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every password scrypt hashes from now on (the real hash still runs)."""
    calls: list[bytes] = []
    real = hashlib.scrypt

    def counting(password: bytes, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(password)
        return real(password, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    return calls


def test_password_is_checked_outside_any_write_transaction(
    db: str, client: FlaskClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While scrypt runs, another connection can take SQLite's write lock at once."""
    if make_url(db).get_backend_name() != "sqlite":
        pytest.skip("the global write lock is SQLite's")
    session.rollback()
    probes: list[bool] = []
    real = hashlib.scrypt

    def probing(password: bytes, **kwargs):  # type: ignore[no-untyped-def]
        other = sqlite3.connect(make_url(db).database, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            probes.append(True)
        except sqlite3.OperationalError:
            probes.append(False)
        finally:
            other.close()
        return real(password, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", probing)
    assert _login(client, "root", "wrong-password").status_code == 401
    assert _login(client, "root", ROOT_PASSWORD).status_code == 200
    assert probes and all(probes), probes


def test_unknown_user_costs_a_hash_and_gets_the_same_answer(
    client: FlaskClient, session: Session, scrypt_calls: list[bytes]
) -> None:
    session.rollback()
    known = client.get(
        "/auth/userpass",
        headers={"X-Rucio-Account": "root", "X-Rucio-Username": "root", "X-Rucio-Password": "wrong-password"},
    )
    assert len(scrypt_calls) == 1
    unknown = client.get(
        "/auth/userpass",
        headers={
            "X-Rucio-Account": "root",
            "X-Rucio-Username": "nobody",
            "X-Rucio-Password": "wrong-password",
        },
    )
    assert len(scrypt_calls) == 2, "an unknown user must cost one scrypt, like a known one"
    assert (known.status_code, known.get_json(force=True)) == (
        unknown.status_code,
        unknown.get_json(force=True),
    )


def _app_with(db: str, **auth: int) -> Flask:
    environ = {f"DATAMGMT_AUTH_{key.upper()}": str(value) for key, value in auth.items()}
    return create_app(Config(environ={**os.environ, **environ}), database_url=db)


def test_identity_lockout_answers_429_with_retry_after_on_every_worker(
    db: str, root: str, session: Session
) -> None:
    session.rollback()
    # Two apps on one catalogue: two gunicorn workers.
    first = _app_with(
        db, login_max_failures=3, login_source_max_failures=100, login_lockout=120
    ).test_client()
    second = _app_with(
        db, login_max_failures=3, login_source_max_failures=100, login_lockout=120
    ).test_client()
    assert _login(first, "root", "wrong-1").status_code == 401
    assert _login(second, "root", "wrong-2", source="192.0.2.2").status_code == 401
    assert _login(first, "root", "wrong-3", source="192.0.2.3").status_code == 401
    locked = _login(second, "root", ROOT_PASSWORD, source="192.0.2.4")
    assert locked.status_code == 429
    assert 0 < int(locked.headers["Retry-After"]) <= 120
    assert locked.headers["ExceptionClass"] == "TooManyLoginAttempts"


def test_source_lockout_stops_hashing(
    db: str, root: str, session: Session, scrypt_calls: list[bytes]
) -> None:
    session.rollback()
    client = _app_with(
        db, login_max_failures=100, login_source_max_failures=4, login_lockout=60
    ).test_client()
    for n in range(4):
        assert _login(client, f"guess{n}", "wrong-password").status_code == 401
    hashed = len(scrypt_calls)
    for n in range(20):
        response = _login(client, f"more{n}", "wrong-password")
        assert response.status_code == 429 and "Retry-After" in response.headers
    assert len(scrypt_calls) == hashed, "a locked source costs no scrypt"
    assert _login(client, "root", ROOT_PASSWORD, source="198.51.100.7").status_code == 200


def test_lockout_ends_and_success_clears_the_count(db: str, root: str, session: Session) -> None:
    import time

    session.rollback()
    client = _app_with(db, login_max_failures=2, login_source_max_failures=100, login_lockout=1).test_client()
    assert _login(client, "root", "wrong-1").status_code == 401
    assert _login(client, "root", ROOT_PASSWORD).status_code == 200
    assert _login(client, "root", "wrong-2").status_code == 401, "a success resets the identity's count"
    assert _login(client, "root", "wrong-3").status_code == 401
    assert _login(client, "root", ROOT_PASSWORD).status_code == 429
    time.sleep(1.5)
    assert _login(client, "root", ROOT_PASSWORD).status_code == 200


@pytest.fixture
def production_cost(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("DATAMGMT_AUTH_SCRYPT_N", raising=False)
    reset_config()
    yield
    monkeypatch.undo()
    reset_config()


def test_scrypt_cost_meets_owasp_and_old_hashes_are_upgraded_on_login(
    client: FlaskClient, session: Session, production_cost: None
) -> None:
    assert Config(environ={}).get_int("auth", "scrypt_n") >= 2**17
    before = session.scalar(select(Identity.password).where(Identity.identity == "root"))
    assert before.startswith(f"scrypt${SUITE_SCRYPT_N}$")  # the test suite's cheap cost
    session.rollback()
    assert _login(client, "root", ROOT_PASSWORD).status_code == 200
    after = session.scalar(select(Identity.password).where(Identity.identity == "root"))
    assert after.startswith(f"scrypt${2**17}$8$1$")
    session.rollback()
    assert _login(client, "root", ROOT_PASSWORD).status_code == 200


def test_password_change_ends_the_identity_sessions(session: Session, root: str) -> None:
    make_account(session, "alice", password="first-password")
    make_account(session, "bob")
    token = issue_token(session, "alice", "alice", IdentityType.USERPASS, 3600).token
    session.commit()
    # Mapping the identity to a second account with a password sets a new password.
    identity.add_account_identity(session, "alice", "USERPASS", "bob", password="second-password")
    session.commit()
    with pytest.raises(CannotAuthenticate):
        validate_token(session, token)


def test_bootstrap_never_resets_root_password(session: Session, root: str) -> None:
    token = issue_token(session, "root", "root", IdentityType.USERPASS, 3600).token
    bootstrap(session, "root", "another-password", "21.T99999")
    assert identity.verify_password(ROOT_PASSWORD, identity.userpass_hash(session, "root"))
    validate_token(session, token)
    bootstrap(session, "root", "another-password", "21.T99999", reset_password=True)
    session.commit()  # as datamgmt-admin does; the commit also tells every worker's token cache
    assert identity.verify_password("another-password", identity.userpass_hash(session, "root"))
    with pytest.raises(CannotAuthenticate):
        validate_token(session, token)


def test_bootstrap_generates_a_private_password_once(db: str, tmp_path: Path) -> None:
    from datamgmt.manage import bootstrap_command

    secret = tmp_path / "var" / "root-password"
    first = CliRunner().invoke(bootstrap_command, ["--username", "root", "--password-file", str(secret)])
    assert first.exit_code == 0, first.output
    password = secret.read_text().strip()
    assert secret.stat().st_mode & 0o777 == 0o600
    assert len(password) >= 20 and password in first.output
    again = CliRunner().invoke(bootstrap_command, ["--username", "root", "--password-file", str(secret)])
    assert again.exit_code == 0 and password not in again.output
    fixed = CliRunner().invoke(bootstrap_command, ["--username", "root", "--password", "some-other-password"])
    assert "left unchanged" in fixed.output
    with _session(db) as session:
        assert identity.verify_password(password, identity.userpass_hash(session, "root"))


def _session(db: str) -> Session:
    from datamgmt.core.db.session import session_factory

    return session_factory(db)()
