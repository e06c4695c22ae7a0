"""``/opendata``: Rucio's open-data states over our shares (DRAFT, PUBLIC = published, SUSPENDED = withdrawn)."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.core import did as dids
from datamgmt.core import did_content
from datamgmt.core.pid import get_share
from datamgmt.core.scope import add_scope
from tests.unit.api.conftest import make_account


def _dataset(session: Session) -> dict[str, str]:
    user = make_account(session, "jdoe")
    add_scope(session, "user.jdoe", "jdoe")
    dids.add_files(
        session, [{"scope": "user.jdoe", "name": "f.root", "bytes": 5, "adler32": "00000005"}], "jdoe"
    )
    dids.add_collections(session, [{"scope": "user.jdoe", "name": "ds"}], "jdoe")
    did_content.attach(session, "user.jdoe", "ds", [{"scope": "user.jdoe", "name": "f.root"}])
    session.commit()
    return user


def test_draft_publish_suspend_republish(client: FlaskClient, session: Session) -> None:
    user = _dataset(session)
    url = "/opendata/dids/user.jdoe/ds"
    added = client.post(url, headers=user)
    assert added.status_code == 201
    again = client.post(url, headers=user)
    assert (
        again.status_code == 409 and again.headers["ExceptionClass"] == "OpenDataDataIdentifierAlreadyExists"
    )
    entry = client.get(url, headers=user)
    assert entry.content_type == "application/json"
    assert (entry.get_json()["state"], entry.get_json()["doi"]) == ("DRAFT", None)
    assert (
        client.get("/opendata/public/dids/user.jdoe/ds").status_code == 404
    )  # no token needed, drafts unseen

    suspend = client.put(url, json={"state": "suspended"}, headers=user)
    assert suspend.status_code == 400 and suspend.headers["ExceptionClass"] == "OpenDataInvalidStateUpdate"
    still_open = client.put(url, json={"state": "public"}, headers=user)
    assert (
        still_open.status_code == 400 and still_open.headers["ExceptionClass"] == "OpenDataInvalidStateUpdate"
    )
    assert client.put("/dids/user.jdoe/ds/status", json={"open": False}, headers=user).status_code == 200
    meta = {"title": "Open", "creator": "Doe, Jane", "publisher": "Example Lab"}  # DataCite's mandatory ones
    published = client.put(url, json={"state": "public", "meta": meta}, headers=user)
    assert published.status_code == 200, published.get_data(as_text=True)
    body = published.get_json()
    assert (body["state_old"], body["state_new"]) == ("DRAFT", "PUBLIC") and body["doi"].startswith(
        "21.T99999/"
    )
    assert get_share(session, "user.jdoe", "ds")["state"] == "PUBLISHED"
    session.rollback()

    public = client.get("/opendata/public/dids/user.jdoe/ds?files=1&meta=1")
    assert public.status_code == 200
    detail = public.get_json()
    assert detail["doi"] == body["doi"] and detail["meta"] == meta
    assert detail["files_summary"] == {"length": 1, "bytes": 5, "extensions": ["root"]}
    listing = client.get("/opendata/public/dids").get_json()
    assert listing["total"] == 1 and [d["name"] for d in listing["dids"]] == ["ds"]

    assert client.put(url, json={"state": "suspended"}, headers=user).get_json()["state_new"] == "SUSPENDED"
    assert get_share(session, "user.jdoe", "ds")["state"] == "WITHDRAWN"
    session.rollback()
    assert client.get("/opendata/public/dids").get_json() == {"total": 0, "offset": 0, "dids": []}
    assert client.get("/opendata/dids?state=suspended", headers=user).get_json()["total"] == 1
    back = client.put(url, json={"state": "draft"}, headers=user)
    assert back.status_code == 400 and back.headers["ExceptionClass"] == "OpenDataInvalidStateUpdate"
    republished = client.put(url, json={"state": "PUBLIC"}, headers=user).get_json()
    assert republished["doi"] == body["doi"]  # a PID names one thing for good
    gone = client.delete(url, headers=user)
    assert gone.status_code == 400 and gone.headers["ExceptionClass"] == "OpenDataInvalidState"


def test_drafts_delete_and_refusals(client: FlaskClient, session: Session) -> None:
    user = _dataset(session)
    other = make_account(session, "mallory")
    url = "/opendata/dids/user.jdoe/ds"
    refused = client.post(url, headers=other)
    assert refused.status_code == 401 and refused.headers["ExceptionClass"] == "AccessDenied"
    assert client.post(url, headers=user).status_code == 201
    assert client.put(url, json={"doi": "10.1/x"}, headers=user).status_code == 400
    assert client.put(url, json={}, headers=user).status_code == 400
    assert client.get("/opendata/dids?state=lost", headers=user).status_code == 400
    assert client.delete(url, headers=other).status_code == 401
    deleted = client.delete(url, headers=user)
    assert deleted.status_code == 204
    missing = client.get(url, headers=user)
    assert (
        missing.status_code == 404 and missing.headers["ExceptionClass"] == "OpenDataDataIdentifierNotFound"
    )
    assert (
        client.post("/opendata/dids/user.jdoe/f.root", headers=user).status_code == 409
    )  # files are not collections
    assert client.post("/opendata/dids/user.jdoe/nope", headers=user).status_code == 404
    assert client.get("/opendata/dids").status_code in (400, 401)  # the private listing needs a token
