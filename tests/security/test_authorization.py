"""What one USER may learn about another account, and who may read /metrics."""

from __future__ import annotations

import json
import os

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.api.app import create_app
from datamgmt.config import Config
from datamgmt.core import account as accounts
from tests.unit.api.conftest import make_account


def _lines(response) -> list[dict]:  # type: ignore[no-untyped-def]
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines() if line]


def test_a_user_sees_neither_identities_nor_email_of_another_account(
    client: FlaskClient, session: Session, root_headers: dict[str, str]
) -> None:
    alice = make_account(session, "alice", password="alice-password")
    make_account(session, "bob", password="bob-password")
    accounts.update_account(session, "bob", "email", "bob@example.org")
    accounts.update_account(session, "alice", "email", "alice@example.org")
    session.commit()
    session.rollback()

    refused = client.get("/accounts/bob/identities", headers=alice)
    assert refused.status_code == 401 and refused.headers["ExceptionClass"] == "AccessDenied"
    assert client.get("/accounts/bob", headers=alice).get_json()["email"] is None
    listed = {row["account"]: row["email"] for row in _lines(client.get("/accounts/", headers=alice))}
    assert listed["bob"] is None and listed["alice"] == "alice@example.org"

    own = _lines(client.get("/accounts/alice/identities", headers=alice))
    assert [row["identity"] for row in own] == ["alice"]
    assert client.get("/accounts/alice", headers=alice).get_json()["email"] == "alice@example.org"
    # Admins see everything.
    assert [
        row["identity"] for row in _lines(client.get("/accounts/bob/identities", headers=root_headers))
    ] == ["bob"]
    assert client.get("/accounts/bob", headers=root_headers).get_json()["email"] == "bob@example.org"


def test_metrics_need_a_token_unless_configured_public(db: str, root_headers: dict[str, str]) -> None:
    closed = create_app(database_url=db).test_client()
    anonymous = closed.get("/metrics")
    assert anonymous.status_code == 401 and anonymous.headers["ExceptionClass"] == "CannotAuthenticate"
    assert closed.get("/metrics", headers=root_headers).status_code == 200
    opened = create_app(
        Config(environ={**os.environ, "DATAMGMT_API_METRICS_PUBLIC": "true"}), database_url=db
    )
    assert opened.test_client().get("/metrics").status_code == 200
