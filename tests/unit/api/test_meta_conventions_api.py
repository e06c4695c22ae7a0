"""``/meta_conventions``: admins declare keys and values; every metadata write obeys them."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.core.did import add_collections
from datamgmt.core.scope import add_scope
from tests.unit.api.conftest import make_account


def test_declare_list_and_enforce(client: FlaskClient, session: Session, root_headers: dict) -> None:
    user = make_account(session, "jdoe")
    add_scope(session, "user.jdoe", "jdoe")
    add_collections(
        session,
        [{"scope": "user.jdoe", "name": "ds"}, {"scope": "user.jdoe", "name": "cnt", "type": "CONTAINER"}],
        "jdoe",
    )
    session.commit()
    assert (
        client.post(
            "/meta_conventions/datatype", json={"key_type": "DATASET"}, headers=root_headers
        ).status_code
        == 201
    )
    assert (
        client.post("/meta_conventions/run", json={"value_type": "int"}, headers=root_headers).status_code
        == 201
    )
    assert (
        client.post(
            "/meta_conventions/tag", json={"value_regexp": "^v[0-9]+$"}, headers=root_headers
        ).status_code
        == 201
    )
    for value in ("AOD", "ESD"):
        assert (
            client.post(
                "/meta_conventions/datatype/", json={"value": value}, headers=root_headers
            ).status_code
            == 201
        )
    keys = client.get("/meta_conventions/", headers=user)
    assert keys.status_code == 200 and keys.content_type == "application/json"
    assert keys.get_json() == ["datatype", "run", "tag"]
    assert client.get("/meta_conventions/datatype/", headers=user).get_json() == ["AOD", "ESD"]

    def put(name: str, meta: dict) -> tuple[int, str | None]:
        answer = client.post(f"/dids/user.jdoe/{name}/meta", json={"meta": meta}, headers=user)
        return answer.status_code, answer.headers.get("ExceptionClass")

    assert put("ds", {"datatype": "AOD", "run": 7, "tag": "v2", "free": "anything"}) == (201, None)
    assert put("ds", {"datatype": "RAW"}) == (400, "InvalidValueForKey")
    assert put("ds", {"run": "seven"}) == (400, "InvalidValueForKey")
    assert put("ds", {"tag": "latest"}) == (400, "InvalidValueForKey")
    assert put("cnt", {"datatype": "AOD"}) == (400, "InvalidValueForKey")  # datatype is for datasets
    single = client.post("/dids/user.jdoe/ds/meta/datatype", json={"value": "RAW"}, headers=user)
    assert single.status_code == 400 and single.headers["ExceptionClass"] == "InvalidValueForKey"
    meta = client.get("/dids/user.jdoe/ds/meta", headers=user).get_json()
    assert (meta["datatype"], meta["run"], meta["tag"]) == ("AOD", 7, "v2")


def test_errors_and_permission(client: FlaskClient, session: Session, root_headers: dict) -> None:
    user = make_account(session, "jdoe")
    refused = client.post("/meta_conventions/k", json={}, headers=user)
    assert refused.status_code == 401 and refused.headers["ExceptionClass"] == "AccessDenied"
    assert (
        client.post(
            "/meta_conventions/k", json={"value_regexp": "^[a-z]+$"}, headers=root_headers
        ).status_code
        == 201
    )
    assert client.post("/meta_conventions/k/", json={"value": "x"}, headers=user).status_code == 401
    cases = [
        ("/meta_conventions/k", {}, 409, "Duplicate"),
        ("/meta_conventions/k2", {"key_type": "FOLDER"}, 400, "UnsupportedKeyType"),
        ("/meta_conventions/k3", {"value_type": "list"}, 400, "UnsupportedValueType"),
        ("/meta_conventions/k4", {"value_regexp": "("}, 400, "InvalidValueForKey"),
        ("/meta_conventions/nokey/", {"value": "x"}, 404, "KeyNotFound"),
        ("/meta_conventions/k/", {"value": "UPPER"}, 400, "InvalidValueForKey"),
        ("/meta_conventions/k/", {}, 400, "KeyError"),
    ]
    for url, body, status, name in cases:
        answer = client.post(url, json=body, headers=root_headers)
        assert (answer.status_code, answer.headers.get("ExceptionClass")) == (status, name), url
    assert client.post("/meta_conventions/k/", json={"value": "ok"}, headers=root_headers).status_code == 201
    again = client.post("/meta_conventions/k/", json={"value": "ok"}, headers=root_headers)
    assert again.status_code == 409 and again.headers["ExceptionClass"] == "Duplicate"
