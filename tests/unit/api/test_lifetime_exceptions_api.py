"""``/lifetime_exceptions``: users ask, admins approve, and the undertaker spares approved DIDs."""

from __future__ import annotations

import json
from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from datamgmt.core import runtime_config
from datamgmt.core.db.models import DataIdentifier, LifetimeException
from datamgmt.core.db.types import utcnow
from datamgmt.core.did import add_collections
from datamgmt.core.scope import add_scope
from datamgmt.core.undertaker import claim_expired
from tests.unit.api.conftest import make_account


def _datasets(session: Session) -> dict[str, str]:
    user = make_account(session, "jdoe")
    add_scope(session, "user.jdoe", "jdoe")
    add_collections(
        session,
        [
            {"scope": "user.jdoe", "name": "short", "lifetime": 3600},
            {"scope": "user.jdoe", "name": "forever"},
        ],
        "jdoe",
    )
    session.commit()
    return user


def _ask(client: FlaskClient, headers: dict, **extra: object) -> dict:
    dids = [{"scope": "user.jdoe", "name": n} for n in ("short", "forever", "missing")]
    answer = client.post(
        "/lifetime_exceptions/", json={"dids": dids, "comments": "needed", **extra}, headers=headers
    )
    assert answer.status_code == 201 and answer.content_type == "application/json", answer.get_data(
        as_text=True
    )
    return answer.get_json()


def test_ask_list_and_approve(client: FlaskClient, session: Session, root_headers: dict) -> None:
    user = _datasets(session)
    result = _ask(client, user)
    [(exception_id, members)] = result["exceptions"].items()
    assert members == [{"scope": "user.jdoe", "name": "short", "did_type": "DATASET"}]
    assert result["not_affected"] == [{"scope": "user.jdoe", "name": "forever", "did_type": "DATASET"}]
    assert result["unknown"] == [{"scope": "user.jdoe", "name": "missing", "did_type": "DATASET"}]
    listed = client.get("/lifetime_exceptions/", headers=user)
    assert listed.status_code == 200 and listed.content_type == "application/x-json-stream"
    [line] = [json.loads(text) for text in listed.get_data(as_text=True).splitlines()]
    assert (line["id"], line["state"], line["account"], line["comments"]) == (
        exception_id,
        "WAITING",
        "jdoe",
        "needed",
    )
    refused = client.put(f"/lifetime_exceptions/{exception_id}", json={"state": "APPROVED"}, headers=user)
    assert refused.status_code == 401 and refused.headers["ExceptionClass"] == "AccessDenied"
    bad_state = client.put(
        f"/lifetime_exceptions/{exception_id}", json={"state": "WAITING"}, headers=root_headers
    )
    assert bad_state.status_code == 400 and bad_state.headers["ExceptionClass"] == "UnsupportedOperation"
    approved = client.put(
        f"/lifetime_exceptions/{exception_id}", json={"state": "APPROVED"}, headers=root_headers
    )
    assert approved.status_code == 201
    one = client.get(f"/lifetime_exceptions/{exception_id}", headers=user).get_data(as_text=True)
    assert '"state": "APPROVED"' in one
    for method in ("get", "put"):
        missing = getattr(client, method)(
            "/lifetime_exceptions/" + "0" * 32, json={"state": "REJECTED"}, headers=root_headers
        )
        assert missing.status_code == 404 and missing.headers["ExceptionClass"] == "LifetimeExceptionNotFound"


def test_undertaker_spares_approved_dids_until_the_exception_runs_out(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    user = _datasets(session)
    exception_id = next(iter(_ask(client, user, expires_at="2999-01-01T00:00:00")["exceptions"]))
    session.execute(update(DataIdentifier).values(expired_at=utcnow() - timedelta(minutes=1)))
    session.commit()
    assert [d["name"] for d in claim_expired(session, 10)] == ["forever", "short"]  # still waiting: no effect
    session.rollback()
    client.put(f"/lifetime_exceptions/{exception_id}", json={"state": "APPROVED"}, headers=root_headers)
    assert [d["name"] for d in claim_expired(session, 10)] == ["forever"]
    session.rollback()
    # an exception that has run out holds nothing back
    session.execute(update(LifetimeException).values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert [d["name"] for d in claim_expired(session, 10)] == ["forever", "short"]


def test_config_caps_and_closes_submissions(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    user = _datasets(session)
    runtime_config.set_options(session, {"lifetime_model": {"max_extension": 10}})
    session.commit()
    exception_id = next(iter(_ask(client, user, expires_at="2999-01-01T00:00:00")["exceptions"]))
    line = client.get(f"/lifetime_exceptions/{exception_id}", headers=user).get_data(as_text=True)
    assert str((utcnow() + timedelta(days=10)).year) in line and "2999" not in line
    for bad in ({"dids": "x"}, {"dids": [{"scope": "user.jdoe"}]}, {"dids": [], "expires_at": "soon"}):
        assert client.post("/lifetime_exceptions/", json=bad, headers=user).status_code == 400, bad
    runtime_config.set_options(session, {"lifetime_model": {"cutoff_date": "2000-01-01"}})
    session.commit()
    closed = client.post(
        "/lifetime_exceptions/", json={"dids": [{"scope": "user.jdoe", "name": "short"}]}, headers=user
    )
    assert closed.status_code == 409 and closed.headers["ExceptionClass"] == "UnsupportedOperation"
