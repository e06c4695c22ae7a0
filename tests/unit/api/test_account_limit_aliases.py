"""Rucio's alias paths for account limits and usage answer as the canonical ones do."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.core.db.models import AccountUsage
from datamgmt.core.rse import add_rse, set_rse_usage
from tests.unit.api.conftest import make_account


def test_accountlimits_paths_set_and_delete_limits(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
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


def test_usage_aliases_stream_the_local_usage(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    add_rse(session, "SITE")
    make_account(session, "alice")
    client.post("/accounts/alice/limits/local/SITE", json={"bytes": 500}, headers=root_headers)
    canonical = client.get("/accounts/alice/usage/local", headers=root_headers).get_data(as_text=True)
    assert json.loads(canonical.splitlines()[0])["bytes_limit"] == 500
    for path in ("/accounts/alice/usage", "/accounts/alice/usage/"):
        assert client.get(path, headers=root_headers).get_data(as_text=True) == canonical
    one = client.get("/accounts/alice/usage/SITE", headers=root_headers).get_data(as_text=True)
    assert one == client.get("/accounts/alice/usage/local/SITE", headers=root_headers).get_data(as_text=True)


@pytest.mark.corrupts_catalogue(
    "account_usage", "rse_usage"
)  # usage written directly, without the files behind it
def test_rse_usage_per_account_lists_shares(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    site = add_rse(session, "SITE")
    make_account(session, "alice")
    bob = make_account(session, "bob")
    session.add_all(
        [
            AccountUsage(account="alice", rse_id=site, files=1, bytes=300),
            AccountUsage(account="bob", rse_id=site, files=1, bytes=100),
        ]
    )
    set_rse_usage(session, "SITE", "rucio", used=400, free=600)
    session.commit()

    def shares(headers: dict) -> list[dict]:
        lines = client.get("/rses/SITE/usage?per_account=true", headers=headers).get_data(as_text=True)
        (usage,) = [json.loads(line) for line in lines.splitlines() if json.loads(line)["source"] == "rucio"]
        return usage["account_usages"]

    expected = [
        {"account": "alice", "used": 300, "percentage": 30.0},
        {"account": "bob", "used": 100, "percentage": 10.0},
    ]
    assert shares(root_headers) == expected
    assert shares(bob) == expected
    plain = client.get("/rses/SITE/usage", headers=bob).get_data(as_text=True)
    assert all("account_usages" not in json.loads(line) for line in plain.splitlines())
