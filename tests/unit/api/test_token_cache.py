"""Validated tokens are remembered per worker, and revocation still reaches every worker at once.

Worker B is a second process with its own app on the same catalogue and the same cache
configuration (a Redis, or the memory backend with its generation file); it
answers requests read from its stdin and says how many token lookups each one sent to the
database, so the tests can see it serve from its cache, then refuse a token that worker A
(this process) revoked, on its very next request.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.api.app import create_app
from datamgmt.config import PROJECT_ROOT, reset_config
from datamgmt.core import token as tokens
from datamgmt.core.account import add_account
from datamgmt.core.db.constants import IdentityType
from datamgmt.core.identity import add_account_identity, set_password
from datamgmt.core.token import issue_token

REDIS_URL = "redis://127.0.0.1:6379/15"

WORKER = textwrap.dedent(
    """
    import json, sys
    from sqlalchemy import event
    from datamgmt.api.app import create_app
    from datamgmt.core.db.session import get_engine

    url = sys.argv[1]
    client = create_app(database_url=url).test_client()
    lookups = []
    event.listen(get_engine(url), "before_cursor_execute",
                 lambda _c, _cur, statement, *_a: lookups.append(1) if "FROM tokens" in statement else None)
    print("ready", flush=True)
    for line in sys.stdin:
        method, path, token = json.loads(line)
        lookups.clear()
        response = client.open(path, method=method, headers={"X-Rucio-Auth-Token": token})
        print(json.dumps([response.status_code, len(lookups)]), flush=True)
    """
)


class Worker:
    """Another API worker process sharing the catalogue and the cache backend."""

    def __init__(self, db: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, db],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        )
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "ready"

    def call(self, method: str, path: str, token: str) -> tuple[int, int]:
        """(status, token lookups sent to the database) of one request."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps([method, path, token]) + "\n")
        self.process.stdin.flush()
        status, lookups = json.loads(self.process.stdout.readline())
        return status, lookups

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(params=["memory", "redis"])
def shared_cache(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    """[cache] for this process and the workers it starts: a Redis of its own key prefix, or the
    memory backend with a generation folder of its own."""
    prefix = f"test-tokens-{uuid.uuid4().hex}"
    monkeypatch.setenv("DATAMGMT_CACHE_BACKEND", request.param)
    monkeypatch.setenv("DATAMGMT_CACHE_PREFIX", prefix)
    monkeypatch.setenv("DATAMGMT_CACHE_GENERATION_DIR", str(tmp_path / "generations"))
    client = redis.Redis.from_url(REDIS_URL)
    if request.param == "redis":
        try:
            client.ping()
        except redis.ConnectionError:
            pytest.skip("no Redis server at 127.0.0.1:6379")
        monkeypatch.setenv("DATAMGMT_CACHE_URL", REDIS_URL)
    reset_config()
    tokens.set_token_cache(None, from_config=True)
    yield prefix
    monkeypatch.undo()
    reset_config()
    tokens.set_token_cache(None, from_config=True)
    if request.param == "redis":
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


@pytest.fixture
def worker_a(db: str, root: str, shared_cache: str) -> FlaskClient:
    app: Flask = create_app(database_url=db)
    return app.test_client()


@pytest.fixture
def worker_b(db: str, root: str, shared_cache: str) -> Iterator[Worker]:
    worker = Worker(db)
    yield worker
    worker.close()


@pytest.fixture
def alice(session: Session, root: str) -> str:
    """A USER account with a userpass identity and a live token issued for it."""
    add_account(session, "alice", "USER")
    add_account_identity(session, "alice", "USERPASS", "alice", password="alice-password")
    token = issue_token(session, "alice", "alice", IdentityType.USERPASS, 3600).token
    session.commit()
    return token


@pytest.fixture
def root_token(session: Session, root: str) -> str:
    token = issue_token(session, "root", "root", IdentityType.USERPASS, 3600).token
    session.commit()
    return token


def _revoke_by_suspension(worker_a: FlaskClient, root_token: str) -> None:
    response = worker_a.put(
        "/accounts/alice",
        headers={"X-Rucio-Auth-Token": root_token},
        data=json.dumps({"status": "SUSPENDED"}),
    )
    assert response.status_code == 200, response.data


def _revoke_by_unmapping(worker_a: FlaskClient, root_token: str) -> None:
    response = worker_a.delete(
        "/accounts/alice/identities",
        headers={"X-Rucio-Auth-Token": root_token},
        data=json.dumps({"identity": "alice", "authtype": "USERPASS"}),
    )
    assert response.status_code == 200, response.data


@pytest.mark.parametrize("revoke", [_revoke_by_suspension, _revoke_by_unmapping], ids=["suspend", "unmap"])
def test_a_token_revoked_in_one_worker_is_refused_by_another_on_its_next_request(
    worker_a: FlaskClient, worker_b: Worker, alice: str, root_token: str, session: Session, revoke
) -> None:
    session.rollback()
    assert worker_b.call("GET", "/accounts/alice", alice) == (200, 1)
    # Worker B now answers from what it remembers: no token lookup reaches the database.
    assert worker_b.call("GET", "/accounts/alice", alice) == (200, 0)

    revoke(worker_a, root_token)

    assert worker_b.call("GET", "/accounts/alice", alice)[0] == 401
    assert worker_a.get("/accounts/alice", headers={"X-Rucio-Auth-Token": alice}).status_code == 401


def test_other_tokens_stay_valid_after_a_revocation(
    worker_a: FlaskClient, worker_b: Worker, alice: str, root_token: str, session: Session
) -> None:
    session.rollback()
    assert worker_b.call("GET", "/accounts/root", root_token)[0] == 200
    _revoke_by_suspension(worker_a, root_token)
    # The new generation costs one lookup, then the token is remembered again.
    assert worker_b.call("GET", "/accounts/root", root_token) == (200, 1)
    assert worker_b.call("GET", "/accounts/root", root_token) == (200, 0)


def test_an_unknown_token_is_never_remembered(worker_b: Worker, session: Session) -> None:
    session.rollback()
    assert worker_b.call("GET", "/accounts/root", "root-no-such-token") == (401, 1)
    assert worker_b.call("GET", "/accounts/root", "root-no-such-token") == (401, 1)


def test_no_validation_is_remembered_with_token_cache_seconds_0(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAMGMT_AUTH_TOKEN_CACHE_SECONDS", "0")
    reset_config()
    tokens.set_token_cache(None, from_config=True)
    try:
        assert tokens.current_token_cache() is None
    finally:
        monkeypatch.undo()
        reset_config()
        tokens.set_token_cache(None, from_config=True)


def test_a_password_change_reaches_every_worker(worker_b: Worker, alice: str, session: Session) -> None:
    """``bootstrap --reset-password`` and friends end the identity's sessions in every worker at once."""
    session.rollback()
    assert worker_b.call("GET", "/accounts/alice", alice) == (200, 1)
    assert worker_b.call("GET", "/accounts/alice", alice) == (200, 0)
    set_password(session, "alice", "a-new-password")
    session.commit()
    assert worker_b.call("GET", "/accounts/alice", alice)[0] == 401
