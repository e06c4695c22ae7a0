"""The flood limit (issue 21): logins and unauthenticated requests per source address, shared by
every worker through the catalogue, answered 429 with Retry-After; loopback exempt unless set."""

from __future__ import annotations

import os

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.api.app import create_app
from datamgmt.config import Config
from tests.conftest import ROOT_PASSWORD

FLOODER, OTHER = "192.0.2.50", "192.0.2.51"


def _app_with(db: str, **api: object) -> Flask:
    environ = {f"DATAMGMT_API_{key.upper()}": str(value) for key, value in api.items()}
    return create_app(Config(environ={**os.environ, **environ}), database_url=db)


def _ping(client: FlaskClient, source: str = FLOODER, **headers: str):
    return client.get("/ping", headers=headers, environ_base={"REMOTE_ADDR": source})


def _login(client: FlaskClient, source: str = FLOODER):
    headers = {"X-Rucio-Username": "root", "X-Rucio-Password": ROOT_PASSWORD}
    return client.get("/auth/userpass", headers=headers, environ_base={"REMOTE_ADDR": source})


def test_a_flood_is_refused_by_every_worker_with_retry_after(db: str, root: str, session: Session) -> None:
    session.rollback()
    # Two apps on one catalogue: two gunicorn workers.
    workers = [
        _app_with(db, flood_max_requests=5, flood_window=60, flood_exempt="").test_client() for _ in range(2)
    ]
    for n in range(5):
        assert _ping(workers[n % 2]).status_code == 200, n
    for worker in workers:
        refused = _ping(worker)
        assert refused.status_code == 429
        assert 0 < int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["ExceptionClass"] == "TooManyRequests"
        assert _login(worker).status_code == 429, "logins from the flooding source wait too"
    assert _ping(workers[0], OTHER).status_code == 200, "another source is not held back"
    assert _login(workers[1], OTHER).status_code == 200


def test_logins_count_and_tokens_do_not(
    db: str, root: str, session: Session, root_headers: dict[str, str]
) -> None:
    session.rollback()
    client = _app_with(db, flood_max_requests=3, flood_window=60, flood_exempt="").test_client()
    token = root_headers["X-Rucio-Auth-Token"]
    for _ in range(10):  # authenticated work is not what the flood limit bounds
        response = client.get(
            "/accounts/root", headers={"X-Rucio-Auth-Token": token}, environ_base={"REMOTE_ADDR": FLOODER}
        )
        assert response.status_code == 200
    assert [_login(client).status_code for _ in range(4)] == [200, 200, 200, 429]
    response = client.get(
        "/accounts/root", headers={"X-Rucio-Auth-Token": token}, environ_base={"REMOTE_ADDR": FLOODER}
    )
    assert response.status_code == 200, "a source's valid tokens keep working (one NAT, many users)"


def test_requests_without_credentials_count_on_any_route(db: str, root: str, session: Session) -> None:
    session.rollback()
    client = _app_with(db, flood_max_requests=3, flood_window=60, flood_exempt="").test_client()
    statuses = [
        client.get(path, environ_base={"REMOTE_ADDR": FLOODER}).status_code
        for path in ("/accounts/root", "/rses/", "/no/such/route", "/ping")
    ]
    assert statuses == [401, 401, 404, 429]


def test_loopback_is_exempt_unless_configured_and_zero_turns_it_off(
    db: str, root: str, session: Session
) -> None:
    session.rollback()
    default_exempt = _app_with(db, flood_max_requests=2).test_client()
    assert all(_ping(default_exempt, "127.0.0.1").status_code == 200 for _ in range(5))
    assert [_ping(default_exempt, "192.0.2.60").status_code for _ in range(3)] == [200, 200, 429]
    off = _app_with(db, flood_max_requests=0, flood_exempt="").test_client()
    assert all(_ping(off, "192.0.2.61").status_code == 200 for _ in range(5))
