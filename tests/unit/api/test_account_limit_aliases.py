"""Rucio's alias paths for account limits and usage answer as the canonical ones do."""

from __future__ import annotations

import json

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.core.rse import add_rse
from tests.unit.api.conftest import make_account


def test_accountlimits_paths_set_and_delete_limits(client: FlaskClient, session: Session, root_headers: dict) -> None:
    add_rse(session, "SITE")
    make_account(session, "alice")
    for path in ("/accountlimits/local/alice/SITE", "/accountlimits/alice/SITE"):
        assert client.post(path, json={"bytes": 1000}, headers=root_headers).status_code == 201
        assert client.get("/accounts/alice/limits", headers=root_headers).get_json() == {"SITE": 1000}
        assert client.get("/accounts/alice/limits/SITE", headers=root_headers).get_json() == {"SITE": 1000}
        assert client.delete(path, headers=root_headers).status_code == 200
        assert client.get("/accounts/alice/limits", headers=root_headers).get_json() == {}
    path = "/accountlimits/global/alice/SITE|SITE"
    assert client.post(path, json={"bytes": 7}, headers=root_headers).status_code == 201
    assert client.get("/accounts/alice/limits/global", headers=root_headers).get_json() == {"SITE|SITE": 7}
    assert client.delete(path, headers=root_headers).status_code == 200
    assert client.get("/accounts/alice/limits/global", headers=root_headers).get_json() == {}


def test_accountlimits_paths_keep_the_permission_policy(client: FlaskClient, session: Session) -> None:
    add_rse(session, "SITE")
    headers = make_account(session, "mallory")
    make_account(session, "alice")
    response = client.post("/accountlimits/alice/SITE", json={"bytes": 1}, headers=headers)
    assert response.status_code == 401
    assert response.headers["ExceptionClass"] == "AccessDenied"


def test_usage_aliases_stream_the_local_usage(client: FlaskClient, session: Session, root_headers: dict) -> None:
    add_rse(session, "SITE")
    make_account(session, "alice")
    client.post("/accounts/alice/limits/local/SITE", json={"bytes": 500}, headers=root_headers)
    canonical = client.get("/accounts/alice/usage/local", headers=root_headers).get_data(as_text=True)
    assert json.loads(canonical.splitlines()[0])["bytes_limit"] == 500
    for path in ("/accounts/alice/usage", "/accounts/alice/usage/"):
        assert client.get(path, headers=root_headers).get_data(as_text=True) == canonical
    one = client.get("/accounts/alice/usage/SITE", headers=root_headers).get_data(as_text=True)
    assert one == client.get("/accounts/alice/usage/local/SITE", headers=root_headers).get_data(as_text=True)
