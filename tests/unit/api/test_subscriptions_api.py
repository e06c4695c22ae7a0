"""``/subscriptions`` through Flask's test client, with the bodies rucio-clients sends."""

from __future__ import annotations

import json

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.unit.api.conftest import make_account

OPTIONS = {
    "filter": {"scope": ["user.jdoe"], "datatype": "AOD"},
    "replication_rules": [{"copies": 1, "rse_expression": "T1", "lifetime": 3600}],
    "comments": "AOD to T1",
    "lifetime": False,
    "retroactive": False,
    "dry_run": False,
    "priority": 3,
}


def lines(response) -> list[dict]:
    assert response.headers["Content-Type"] == "application/x-json-stream"
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def test_add_get_list_and_update(client: FlaskClient, session: Session, root_headers: dict[str, str]) -> None:
    headers = make_account(session, "jdoe")
    response = client.post("/subscriptions/jdoe/aod", headers=headers, data=json.dumps({"options": OPTIONS}))
    assert response.status_code == 201
    sub_id = response.get_data(as_text=True)

    (found,) = lines(client.get("/subscriptions/jdoe/aod", headers=headers))
    assert found["id"] == sub_id and found["state"] == "ACTIVE" and found["policyid"] == 3
    assert json.loads(found["filter"]) == OPTIONS["filter"]
    assert found["created_at"].endswith(" UTC")
    assert [s["id"] for s in lines(client.get("/subscriptions/jdoe", headers=root_headers))] == [sub_id]
    assert [s["id"] for s in lines(client.get("/subscriptions/", headers=headers))] == [sub_id]
    assert [s["id"] for s in lines(client.get("/subscriptions/name/aod", headers=headers))] == [sub_id]
    by_id = client.get(f"/subscriptions/Id/{sub_id}", headers=headers)
    assert by_id.status_code == 200 and by_id.get_json()["name"] == "aod"

    update = {
        "options": {
            "filter": {"datatype": "ESD"},
            "replication_rules": None,
            "comments": None,
            "lifetime": None,
            "retroactive": None,
            "dry_run": None,
            "priority": None,
        }
    }
    response = client.put("/subscriptions/jdoe/aod", headers=headers, data=json.dumps(update))
    assert response.status_code == 201
    found = client.get(f"/subscriptions/id/{sub_id}", headers=headers).get_json()
    assert json.loads(found["filter"]) == {"datatype": "ESD"} and found["comments"] == "AOD to T1"
    assert found["state"] == "UPDATED"


def test_accounts_manage_only_their_own_subscriptions(
    client: FlaskClient, session: Session, root_headers: dict[str, str]
) -> None:
    jdoe = make_account(session, "jdoe")
    make_account(session, "other")
    admin = make_account(session, "admin", admin=True)
    body = json.dumps({"options": OPTIONS})
    refused = client.post("/subscriptions/other/aod", headers=jdoe, data=body)
    assert refused.status_code == 401 and refused.headers["ExceptionClass"] == "AccessDenied"
    assert client.post("/subscriptions/other/aod", headers=admin, data=body).status_code == 201
    refused = client.put(
        "/subscriptions/other/aod", headers=jdoe, data=json.dumps({"options": {"comments": "x"}})
    )
    assert refused.status_code == 401
    assert (
        client.put(
            "/subscriptions/other/aod", headers=root_headers, data=json.dumps({"options": {"comments": "x"}})
        ).status_code
        == 201
    )
    anonymous = client.post("/subscriptions/jdoe/aod", data=body)
    assert anonymous.status_code == 401 and anonymous.headers["ExceptionClass"] == "CannotAuthenticate"


def test_errors(client: FlaskClient, session: Session) -> None:
    headers = make_account(session, "jdoe")
    body = json.dumps({"options": OPTIONS})
    assert client.post("/subscriptions/jdoe/aod", headers=headers, data=body).status_code == 201
    duplicate = client.post("/subscriptions/jdoe/aod", headers=headers, data=body)
    assert duplicate.status_code == 409 and duplicate.headers["ExceptionClass"] == "SubscriptionDuplicate"
    bad = {"options": {**OPTIONS, "filter": {"pattern": "("}}}
    invalid = client.post("/subscriptions/jdoe/bad", headers=headers, data=json.dumps(bad))
    assert invalid.status_code == 400 and invalid.headers["ExceptionClass"] == "InvalidObject"
    missing = client.post(
        "/subscriptions/jdoe/bad", headers=headers, data=json.dumps({"options": {"filter": {}}})
    )
    assert missing.status_code == 400
    for path in ("/subscriptions/root", "/subscriptions/jdoe/none", f"/subscriptions/Id/{'0' * 32}"):
        response = client.get(path, headers=headers)
        assert response.status_code == 404 and response.headers["ExceptionClass"] == "SubscriptionNotFound", (
            path
        )
    not_found = client.put(
        "/subscriptions/jdoe/none", headers=headers, data=json.dumps({"options": {"comments": "x"}})
    )
    assert not_found.status_code == 404
