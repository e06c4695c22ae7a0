"""``/locks``: dataset locks by RSE, by dataset and in bulk, with Rucio's fields."""

from __future__ import annotations

import json

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.core.did import add_collection
from datamgmt.core.did_content import attach
from datamgmt.core.quota import set_local_account_limit
from datamgmt.core.replica import add_replicas
from datamgmt.core.rse import add_rse
from datamgmt.core.rule import add_rule
from datamgmt.core.scope import add_scope


def _world(session: Session) -> dict[str, str]:
    """Two datasets in a container; a rule on ds1 at SITE, one on the container at OTHER."""
    add_scope(session, "user.x", "root")
    for rse in ("SITE", "OTHER"):
        add_rse(session, rse)
        set_local_account_limit(session, "root", rse, -1)
    files = [{"scope": "user.x", "name": f"f{i}", "bytes": 10, "adler32": "0cc737eb"} for i in range(3)]
    add_replicas(session, "SITE", files, "root")
    add_replicas(session, "OTHER", files, "root")
    add_collection(session, "user.x", "ds1", "DATASET", "root")
    add_collection(session, "user.x", "ds2", "DATASET", "root")
    add_collection(session, "user.x", "cont", "CONTAINER", "root")
    attach(session, "user.x", "ds1", files[:2])
    attach(session, "user.x", "ds2", files[2:])
    attach(
        session, "user.x", "cont", [{"scope": "user.x", "name": "ds1"}, {"scope": "user.x", "name": "ds2"}]
    )
    on_ds1 = add_rule(session, [{"scope": "user.x", "name": "ds1"}], "root", 1, "SITE")[0]
    on_cont = add_rule(session, [{"scope": "user.x", "name": "cont"}], "root", 1, "OTHER")[0]
    session.commit()
    return {"ds1": on_ds1, "cont": on_cont}


def _lines(response) -> list[dict]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.get_data(as_text=True)
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def test_locks_by_rse_and_by_dataset(client: FlaskClient, session: Session, root_headers: dict) -> None:
    rules = _world(session)
    on_site = _lines(client.get("/locks/SITE?did_type=dataset", headers=root_headers))
    assert [
        (lock["name"], lock["rule_id"], lock["state"], lock["length"], lock["bytes"]) for lock in on_site
    ] == [("ds1", rules["ds1"], "OK", 2, 20)]
    assert set(on_site[0]) == {
        "rse_id",
        "rse",
        "scope",
        "name",
        "rule_id",
        "account",
        "state",
        "length",
        "bytes",
        "accessed_at",
    }
    of_ds2 = _lines(client.get("/locks/user.x/ds2?did_type=dataset", headers=root_headers))
    assert [(lock["rse"], lock["rule_id"]) for lock in of_ds2] == [("OTHER", rules["cont"])]


def test_bulk_expands_containers(client: FlaskClient, session: Session, root_headers: dict) -> None:
    rules = _world(session)
    body = {"dids": [{"scope": "user.x", "name": "cont"}, {"scope": "user.x", "name": "missing"}]}
    found = _lines(client.post("/locks/bulk_locks_for_dids", json=body, headers=root_headers))
    assert sorted((lock["name"], lock["rse"]) for lock in found) == [
        ("ds1", "OTHER"),
        ("ds1", "SITE"),
        ("ds2", "OTHER"),
    ]
    assert {lock["rule_id"] for lock in found} == {rules["ds1"], rules["cont"]}


def test_bad_requests(client: FlaskClient, session: Session, root_headers: dict) -> None:
    _world(session)
    assert client.get("/locks/SITE", headers=root_headers).status_code == 400
    assert client.get("/locks/SITE?did_type=file", headers=root_headers).status_code == 400
    missing = client.get("/locks/NOWHERE?did_type=dataset", headers=root_headers)
    assert missing.status_code == 404 and missing.headers["ExceptionClass"] == "RSENotFound"
    a_file = {"dids": [{"scope": "user.x", "name": "f0"}]}
    assert client.post("/locks/bulk_locks_for_dids", json=a_file, headers=root_headers).status_code == 400
    assert client.post("/locks/bulk_locks_for_dids", json={}, headers=root_headers).status_code == 400
    anonymous, protected = client.get("/locks/SITE?did_type=dataset"), client.get("/rules/")
    assert (anonymous.status_code, anonymous.headers["ExceptionClass"]) == (
        protected.status_code,
        protected.headers["ExceptionClass"],
    )  # the API's answer to a missing token
