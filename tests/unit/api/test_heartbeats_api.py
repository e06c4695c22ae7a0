"""``/heartbeats``: admins list the daemons' heartbeats and external daemons send theirs."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from datamgmt.core.db.models import Heartbeat
from datamgmt.core.db.types import utcnow
from datamgmt.core.heartbeat import beat
from tests.unit.api.conftest import make_account


def test_send_and_list(client: FlaskClient, session: Session, root_headers: dict) -> None:
    beat(session, "judge-evaluator", "w1", "node1", 11)
    session.commit()
    body = {"executable": "external-daemon", "hostname": "node2", "pid": 42}
    sent = client.post("/heartbeats", json=body, headers=root_headers)
    assert sent.status_code == 200 and sent.get_data(as_text=True) == "OK"
    listed = client.get("/heartbeats", headers=root_headers).get_json()
    assert {(h["readable"], h["hostname"], h["pid"]) for h in listed} == {
        ("judge-evaluator", "node1", 11),
        ("external-daemon", "node2", 42),
    }
    assert all(" UTC" in h["updated_at"] for h in listed)


def test_older_than_forgets_silent_workers(client: FlaskClient, session: Session, root_headers: dict) -> None:
    beat(session, "external-daemon", "old:1", "old", 1)
    session.execute(update(Heartbeat).values(updated_at=utcnow() - timedelta(hours=2)))
    session.commit()
    body = {"executable": "external-daemon", "hostname": "new", "pid": 2, "older_than": 3600}
    assert client.post("/heartbeats", json=body, headers=root_headers).status_code == 200
    assert [h["hostname"] for h in client.get("/heartbeats", headers=root_headers).get_json()] == ["new"]


def test_admins_only_and_bad_bodies(client: FlaskClient, session: Session, root_headers: dict) -> None:
    user = make_account(session, "jdoe")
    assert client.get("/heartbeats", headers=user).status_code == 401
    body = {"executable": "x", "hostname": "h", "pid": 1}
    assert client.post("/heartbeats", json=body, headers=user).status_code == 401
    assert client.post("/heartbeats", json={"executable": "x"}, headers=root_headers).status_code == 400
    assert client.post("/heartbeats", json={**body, "pid": "one"}, headers=root_headers).status_code == 400
    for bad in ({"pid": 2**63}, {"pid": -1}, {"older_than": 2**63}, {"executable": ""}, {"hostname": ""}):
        assert client.post("/heartbeats", json={**body, **bad}, headers=root_headers).status_code == 400, bad
