"""The ``/dids`` routes Rucio 41 adds: GUID look-up, scope tree, new DIDs, bulk files and
metadata, status, followers, samples and resurrection, with Rucio's codes and stream formats."""

from __future__ import annotations

import json
from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from datamgmt.core import did as dids
from datamgmt.core import did_content
from datamgmt.core.db.models import DataIdentifier
from datamgmt.core.db.types import utcnow
from datamgmt.core.metadata import set_metadata_bulk
from datamgmt.core.scope import add_scope
from datamgmt.core.undertaker import bury, claim_expired
from tests.unit.api.conftest import make_account

GUID = "0123456789abcdef0123456789abcdef"
STREAM = "application/x-json-stream"


def lines(answer) -> list[dict]:  # type: ignore[no-untyped-def]
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return [json.loads(text) for text in answer.get_data(as_text=True).splitlines()]


def _tree(session: Session) -> dict[str, str]:
    """user.jdoe: cnt > ds > f1 (with GUID), f2; a lone file f3."""
    user = make_account(session, "jdoe")
    add_scope(session, "user.jdoe", "jdoe")
    files = [
        {
            "scope": "user.jdoe",
            "name": f"f{i}",
            "bytes": i,
            "adler32": "0000000" + str(i),
            "guid": GUID if i == 1 else None,
        }
        for i in (1, 2, 3)
    ]
    dids.add_files(session, files, "jdoe")
    dids.add_collections(
        session,
        [{"scope": "user.jdoe", "name": "ds"}, {"scope": "user.jdoe", "name": "cnt", "type": "CONTAINER"}],
        "jdoe",
    )
    did_content.attach(
        session,
        "user.jdoe",
        "ds",
        [{"scope": "user.jdoe", "name": "f1"}, {"scope": "user.jdoe", "name": "f2"}],
    )
    did_content.attach(session, "user.jdoe", "cnt", [{"scope": "user.jdoe", "name": "ds"}])
    set_metadata_bulk(session, "user.jdoe", "cnt", {"project": "p1", "run": 1})
    set_metadata_bulk(session, "user.jdoe", "ds", {"run": 2})
    session.commit()
    return user


def test_lookups(client: FlaskClient, session: Session) -> None:
    user = _tree(session)
    by_guid = client.get(f"/dids/{GUID}/guid", headers=user)
    assert by_guid.content_type == STREAM and lines(by_guid) == [{"scope": "user.jdoe", "name": "ds"}]
    dashed = f"{GUID[:8]}-{GUID[8:12]}-{GUID[12:16]}-{GUID[16:20]}-{GUID[20:]}".upper()
    assert lines(client.get(f"/dids/{dashed}/guid", headers=user)) == [{"scope": "user.jdoe", "name": "ds"}]
    missing = client.get("/dids/" + "f" * 32 + "/guid", headers=user)
    assert missing.status_code == 404 and missing.headers["ExceptionClass"] == "DataIdentifierNotFound"

    top = lines(client.get("/dids/user.jdoe/", headers=user))
    assert [(d["name"], d["type"], d["level"], d["parent"]) for d in top] == [
        ("cnt", "CONTAINER", 0, None),
        ("f3", "FILE", 0, None),
    ]
    deep = lines(client.get("/dids/user.jdoe/?name=cnt&recursive=True", headers=user))
    assert [(d["name"], d["level"], (d["parent"] or {}).get("name")) for d in deep] == [
        ("cnt", 0, None),
        ("ds", 1, "cnt"),
        ("f1", 2, "ds"),
        ("f2", 2, "ds"),
    ]
    assert client.get("/dids/user.jdoe/?name=nope", headers=user).status_code == 404

    new = lines(client.get("/dids/new?type=DATASET", headers=user))
    assert [(d["name"], d["did_type"]) for d in new] == [("ds", "DATASET")]
    status = client.get("/dids/user.jdoe/ds/status", headers=user)
    assert status.content_type == "application/json" and status.get_json()["type"] == "DATASET"


def test_bulk_files_and_metadata(client: FlaskClient, session: Session) -> None:
    user = _tree(session)
    asked = [{"scope": "user.jdoe", "name": n} for n in ("cnt", "f3", "nope")]
    files = client.post("/dids/bulkfiles", json={"dids": asked}, headers=user)
    assert files.content_type == STREAM
    assert [(f["parent_name"], f["name"], f["guid"]) for f in lines(files)] == [
        ("cnt", "f1", GUID.upper()),
        ("cnt", "f2", None),
        ("f3", "f3", None),
    ]
    meta = lines(client.post("/dids/bulkmeta", json={"dids": asked, "plugin": "JSON"}, headers=user))
    assert meta == [{"project": "p1", "run": 1}, {}]
    ds = [{"scope": "user.jdoe", "name": "ds"}]
    [inherited] = lines(
        client.post("/dids/bulkmeta", json={"dids": ds, "inherit": True, "plugin": "JSON"}, headers=user)
    )
    assert inherited == {"run": 2, "project": "p1"}
    [columns] = lines(client.post("/dids/bulkmeta", json={"dids": ds}, headers=user))
    assert (columns["scope"], columns["did_type"], columns["run"]) == ("user.jdoe", "DATASET", 2)
    no_dids = client.post("/dids/bulkmeta", json={}, headers=user)
    assert no_dids.status_code == 400 and no_dids.headers["ExceptionClass"] == "KeyError"
    bad_plugin = client.post("/dids/bulkmeta", json={"dids": ds, "plugin": "XML"}, headers=user)
    assert bad_plugin.status_code == 400

    items = [
        {"scope": "user.jdoe", "name": "ds", "meta": {"run": 3}},
        {"scope": "user.jdoe", "name": "f3", "meta": {"x": "y"}},
    ]
    assert client.post("/dids/bulkdidsmeta", json={"dids": items}, headers=user).status_code == 201
    assert lines(client.post("/dids/bulkmeta", json={"dids": ds, "plugin": "JSON"}, headers=user)) == [
        {"run": 3}
    ]
    other = make_account(session, "mallory")
    refused = client.post("/dids/bulkdidsmeta", json={"dids": items}, headers=other)
    assert refused.status_code == 401 and refused.headers["ExceptionClass"] == "AccessDenied"


def test_follow(client: FlaskClient, session: Session, root_headers: dict) -> None:
    user = _tree(session)
    other = make_account(session, "mallory")
    url = "/dids/user.jdoe/ds/follow"
    assert client.post(url, json={"account": "jdoe"}, headers=user).status_code == 201
    assert client.post(url, json={"account": "jdoe"}, headers=user).status_code == 201  # twice is once
    assert client.post(url, json={"account": "mallory"}, headers=root_headers).status_code == 201
    enrol = client.post(url, json={"account": "root"}, headers=user)
    assert enrol.status_code == 401 and enrol.headers["ExceptionClass"] == "AccessDenied"
    listed = client.get(url, headers=other)
    assert listed.content_type == "application/json"
    assert lines(listed) == [{"user": "jdoe"}, {"user": "mallory"}]
    assert client.delete(url, json={"account": "jdoe"}, headers=other).status_code == 401
    assert client.delete(url, json={"account": "mallory"}, headers=other).status_code == 200
    assert lines(client.get(url, headers=user)) == [{"user": "jdoe"}]
    missing = client.post("/dids/user.jdoe/nope/follow", json={"account": "jdoe"}, headers=user)
    assert missing.status_code == 404 and missing.headers["ExceptionClass"] == "DataIdentifierNotFound"
    assert client.post(url, json={}, headers=user).status_code == 400


def test_sample_and_resurrect(client: FlaskClient, session: Session, root_headers: dict) -> None:
    user = _tree(session)
    body = {
        "input_scope": "user.jdoe",
        "input_name": "cnt",
        "output_scope": "user.jdoe",
        "output_name": "s1",
        "nbfiles": 1,
    }
    made = client.post("/dids/sample", json=body, headers=user)
    assert made.status_code == 201 and made.get_data(as_text=True) == "Created"
    assert len(lines(client.get("/dids/user.jdoe/s1/dids", headers=user))) == 1
    assert client.post("/dids/user.jdoe/ds/user.jdoe/s2/5/sample", headers=user).status_code == 201
    assert {d["name"] for d in lines(client.get("/dids/user.jdoe/s2/dids", headers=user))} == {"f1", "f2"}
    again = client.post("/dids/sample", json=body, headers=user)
    assert again.status_code == 409 and again.headers["ExceptionClass"] == "DataIdentifierAlreadyExists"
    other = make_account(session, "mallory")
    assert client.post("/dids/sample", json={**body, "output_name": "s3"}, headers=other).status_code == 401
    assert (
        client.post(
            "/dids/sample", json={**body, "output_name": "s4", "nbfiles": "many"}, headers=user
        ).status_code
        == 400
    )

    session.execute(
        update(DataIdentifier)
        .where(DataIdentifier.name == "ds")
        .values(expired_at=utcnow() - timedelta(hours=1))
    )
    session.commit()
    asked = [{"scope": "user.jdoe", "name": "ds"}]
    refused = client.post("/dids/resurrect", json=asked, headers=user)
    assert refused.status_code == 401 and refused.headers["ExceptionClass"] == "AccessDenied"
    assert client.post("/dids/resurrect", json=asked, headers=root_headers).status_code == 201
    assert client.get("/dids/user.jdoe/ds", headers=user).get_json()["expired_at"] is None
    never = client.post(
        "/dids/resurrect", json=[{"scope": "user.jdoe", "name": "never"}], headers=root_headers
    )
    assert never.status_code == 404 and never.headers["ExceptionClass"] == "DataIdentifierNotFound"


def test_resurrect_brings_back_what_the_undertaker_removed(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    user = _tree(session)
    session.execute(
        update(DataIdentifier)
        .where(DataIdentifier.name.in_(["ds", "f3"]))
        .values(expired_at=utcnow() - timedelta(hours=1))
    )
    session.commit()
    assert bury(session, claim_expired(session, 10)) == 2  # ds, and f3 which has no replica
    session.commit()
    assert client.get("/dids/user.jdoe/ds", headers=user).status_code == 404
    asked = [{"scope": "user.jdoe", "name": "ds"}, {"scope": "user.jdoe", "name": "f3"}]
    assert client.post("/dids/resurrect", json=asked, headers=root_headers).status_code == 201
    ds = client.get("/dids/user.jdoe/ds", headers=user).get_json()
    assert (ds["type"], ds["expired_at"], ds["length"], ds["bytes"]) == (
        "DATASET",
        None,
        0,
        0,
    )  # restored empty
    f3 = client.get("/dids/user.jdoe/f3", headers=user).get_json()
    assert (f3["type"], f3["bytes"], f3["adler32"]) == ("FILE", 3, "00000003")
    again = client.post("/dids/resurrect", json=asked[:1], headers=root_headers)
    assert again.status_code == 404  # it is live again, nothing to bring back


def test_content_history_keeps_what_was_detached(client: FlaskClient, session: Session) -> None:
    user = _tree(session)
    assert lines(client.get("/dids/user.jdoe/ds/dids/history", headers=user)) == []
    detached = client.delete(
        "/dids/user.jdoe/ds/dids", json={"dids": [{"scope": "user.jdoe", "name": "f2"}]}, headers=user
    )
    assert detached.status_code == 200
    history = client.get("/dids/user.jdoe/ds/dids/history", headers=user)
    assert history.content_type == STREAM
    [line] = lines(history)
    assert (line["scope"], line["name"], line["type"], line["bytes"]) == ("user.jdoe", "f2", "FILE", 2)
    assert line["deleted_at"].endswith("UTC") and line["created_at"].endswith("UTC")
    assert client.get("/dids/user.jdoe/nope/dids/history", headers=user).status_code == 404


def test_content_history_keeps_what_the_undertaker_removed(client: FlaskClient, session: Session) -> None:
    user = _tree(session)
    session.execute(
        update(DataIdentifier)
        .where(DataIdentifier.name == "ds")
        .values(expired_at=utcnow() - timedelta(hours=1))
    )
    session.commit()
    assert bury(session, claim_expired(session, 10)) == 1
    session.commit()
    assert [
        (d["name"], d["type"]) for d in lines(client.get("/dids/user.jdoe/cnt/dids/history", headers=user))
    ] == [("ds", "DATASET")]


def test_an_attachment_without_a_parent_is_bad_input(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    """The parent of each attachment is checked as a DID name: without one, a 400 naming it, not
    a look-up of a DID called ``None``."""
    _tree(session)
    body = {"attachments": [{"name": "ds", "dids": [{"scope": "user.jdoe", "name": "f3"}]}]}
    answer = client.post("/dids/attachments", json=body, headers=root_headers)
    assert answer.status_code == 400 and answer.headers["ExceptionClass"] == "InputValidationError"
    assert "scope" in answer.headers["ExceptionMessage"]
