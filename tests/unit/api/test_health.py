"""``GET /health``: 200 when every expected daemon has a fresh heartbeat, 503 otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from datamgmt.config import reset_config
from datamgmt.core import heartbeat
from datamgmt.core.db.models import Heartbeat
from datamgmt.core.db.types import utcnow


@pytest.fixture
def expecting(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The API expects judge-evaluator and reaper, with a 60 s heartbeat timeout."""
    monkeypatch.setenv("DATAMGMT_API_HEALTH_DAEMONS", "judge-evaluator, reaper")
    monkeypatch.setenv("DATAMGMT_DAEMONS_HEARTBEAT_TIMEOUT", "60")
    reset_config()
    yield
    monkeypatch.undo()
    reset_config()


def _beat(session: Session, daemon: str, worker: str, age_seconds: int = 0) -> None:
    heartbeat.beat(session, daemon, worker, "host.example.org", 4242)
    session.execute(
        update(Heartbeat)
        .where(Heartbeat.worker_id == worker)
        .values(updated_at=utcnow() - timedelta(seconds=age_seconds))
    )
    session.commit()


@pytest.mark.usefixtures("expecting")
def test_fresh_heartbeats_are_healthy_without_a_token(client: FlaskClient, session: Session) -> None:
    _beat(session, "judge-evaluator", "w1")
    _beat(session, "reaper", "w2", age_seconds=30)
    _beat(session, "reaper", "w3", age_seconds=600)
    response = client.get("/health")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "ok" and body["heartbeat_timeout"] == 60
    assert set(body["daemons"]) == {"judge-evaluator", "reaper"}
    assert body["daemons"]["reaper"]["live_workers"] == 1
    assert "host.example.org" not in response.get_data(as_text=True) and "4242" not in response.get_data(
        as_text=True
    )


@pytest.mark.usefixtures("expecting")
def test_stale_or_missing_heartbeats_are_503(client: FlaskClient, session: Session) -> None:
    _beat(session, "judge-evaluator", "w1", age_seconds=61)
    response = client.get("/health")
    assert response.status_code == 503
    daemons = response.get_json()["daemons"]
    assert daemons["judge-evaluator"]["alive"] is False and daemons["judge-evaluator"]["last_beat"]
    assert daemons["reaper"] == {"alive": False, "live_workers": 0, "last_beat": None}
    _beat(session, "judge-evaluator", "w1")
    _beat(session, "reaper", "w2")
    assert client.get("/health").status_code == 200


def test_without_a_list_every_daemon_that_beats_is_expected(client: FlaskClient, session: Session) -> None:
    idle = client.get("/health")
    assert (idle.status_code, idle.get_json()["daemons"]) == (200, {})
    _beat(session, "abacus", "w1", age_seconds=10**5)
    response = client.get("/health")
    assert response.status_code == 503
    assert list(response.get_json()["daemons"]) == ["abacus"]


def test_ping_is_unchanged(client: FlaskClient) -> None:
    response = client.get("/ping")
    assert response.status_code == 200 and list(response.get_json()) == ["version"]
