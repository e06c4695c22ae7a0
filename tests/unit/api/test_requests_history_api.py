"""``/requests/history/*``, ``/requests/metrics`` and ``/requests/transfer_limits`` in Rucio's shapes."""

from __future__ import annotations

import json

from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from datamgmt.core.db.constants import RequestState
from datamgmt.core.db.models import Request
from datamgmt.core.request import requests_done, requests_failed
from datamgmt.core.transfer import claim_queued, throttle
from tests.unit.api.conftest import make_account
from tests.unit.api.test_requests_api import _transfers


def _lines(response) -> list[dict]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.get_data(as_text=True)
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def _attempts(session: Session) -> None:
    """f0 fails once (tool error) then arrives; f1 fails once."""
    _transfers(session)
    ids = dict(session.execute(select(Request.name, Request.id)).tuples().all())
    session.execute(
        update(Request).values(state=RequestState.SUBMITTED, external_id="job-1", transfertool="fts3")
    )
    requests_failed(session, {ids["f0"]: "DESTINATION OVERWRITE [17] file exists", ids["f1"]: "timeout"}, 3)
    session.execute(update(Request).where(Request.id == ids["f0"]).values(state=RequestState.SUBMITTED))
    requests_done(session, [ids["f0"]])
    session.commit()


def test_history_list_and_by_did(client: FlaskClient, session: Session, root_headers: dict) -> None:
    _attempts(session)
    failed = _lines(
        client.get("/requests/history/list?src_rse=SRC&dst_rse=DST&request_states=F", headers=root_headers)
    )
    assert sorted((r["name"], r["err_msg"]) for r in failed) == [
        ("f0", "DESTINATION OVERWRITE [17] file exists"),
        ("f1", "timeout"),
    ]
    assert {(r["source_rse"], r["dest_rse"], r["external_id"], r["transfertool"]) for r in failed} == {
        ("SRC", "DST", "job-1", "fts3")
    }
    paged = _lines(
        client.get(
            "/requests/history/list?src_rse=SRC&dst_rse=DST&request_states=F,D&limit=2&offset=1",
            headers=root_headers,
        )
    )
    assert len(paged) == 2
    newest = client.get("/requests/history/data/f0/DST", headers=root_headers)
    assert newest.status_code == 200 and newest.get_json()["state"] == "DONE"
    missing = client.get("/requests/history/data/f0/SRC", headers=root_headers)
    assert missing.status_code == 404 and missing.headers["ExceptionClass"] == "RequestNotFound"
    bad = client.get(
        "/requests/history/list?src_rse=SRC&dst_rse=DST&request_states=F&limit=-1", headers=root_headers
    )
    assert bad.status_code == 400
    user = make_account(session, "jdoe")
    session.rollback()
    assert client.get("/requests/history/data/f0/DST", headers=user).status_code == 401


def test_metrics(client: FlaskClient, session: Session, root_headers: dict) -> None:
    _attempts(session)
    (pair,) = _lines(client.get("/requests/metrics", headers=root_headers))
    assert (pair["src_rse"], pair["dst_rse"]) == ("SRC", "DST")
    assert pair["files"]["done-total-1h"] == 1 and pair["files"]["failed-total-1h"] == 2
    assert pair["files"]["queued-total"] == 1  # f1 waits for its retry
    assert pair["bytes"]["done-total-6h"] == 1
    panda = client.get("/requests/metrics?format=panda&group_by_rse_attribute=site", headers=root_headers)
    assert list(panda.get_json()) == ["CERN:FNAL"]
    assert client.get("/requests/metrics?dst_rse=NOPE", headers=root_headers).status_code == 404


def test_transfer_limits_throttle_the_conveyor(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    _transfers(session)
    session.rollback()
    body = {"rse_expression": "site=FNAL", "max_transfers": 1}
    assert client.put("/requests/transfer_limits", json=body, headers=root_headers).status_code == 201
    assert (
        client.put(
            "/requests/transfer_limits", json={**body, "max_transfers": "x"}, headers=root_headers
        ).status_code
        == 400
    )
    empty = client.put(
        "/requests/transfer_limits", json={**body, "rse_expression": "site=NOWHERE"}, headers=root_headers
    )
    assert empty.status_code == 409 and empty.headers["ExceptionClass"] == "InvalidRSEExpression"
    (listed,) = _lines(client.get("/requests/transfer_limits", headers=root_headers))
    assert (listed["rse_expression"], listed["direction"], listed["max_transfers"]) == (
        "site=FNAL",
        "DESTINATION",
        1,
    )

    queued = claim_queued(session, "w", 10, 60)
    allowed, held = throttle(session, queued, max_active_per_rse=0)
    assert (len(allowed), len(held)) == (1, 1)
    session.rollback()

    assert (
        client.delete(
            "/requests/transfer_limits", json={"rse_expression": "site=FNAL"}, headers=root_headers
        ).status_code
        == 200
    )
    assert _lines(client.get("/requests/transfer_limits", headers=root_headers)) == []
    user = make_account(session, "jdoe")
    session.rollback()
    assert client.put("/requests/transfer_limits", json=body, headers=user).status_code == 401
