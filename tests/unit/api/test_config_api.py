"""``/config``: the run-time configuration table, admins only, in Rucio's shapes and codes."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.core import runtime_config
from tests.unit.api.conftest import make_account


def test_set_read_and_remove(client: FlaskClient, session: Session, root_headers: dict) -> None:
    posted = client.post(
        "/config",
        json={
            "lifetime_model": {"max_extension": 30, "cutoff_date": "2099-01-01"},
            "flags": {"on": True, "ratio": 0.5, "name": "x"},
        },
        headers=root_headers,
    )
    assert posted.status_code == 201 and posted.get_data(as_text=True) == "Created"
    everything = client.get("/config", headers=root_headers)
    assert everything.status_code == 200 and everything.content_type == "application/json"
    assert everything.get_json() == {
        "flags": {"name": "x", "on": True, "ratio": 0.5},
        "lifetime_model": {"cutoff_date": "2099-01-01", "max_extension": 30},
    }
    assert client.put("/config/flags/name/y", headers=root_headers).status_code == 201
    assert client.get("/config/flags/name", headers=root_headers).get_json() == "y"
    assert client.get("/config/flags", headers=root_headers).get_json() == {
        "name": "y",
        "on": True,
        "ratio": 0.5,
    }
    assert runtime_config.get_text(session, "lifetime_model", "max_extension") == "30"
    session.rollback()
    assert client.delete("/config/flags/name", headers=root_headers).status_code == 200
    assert client.delete("/config/flags", headers=root_headers).status_code == 200
    assert client.get("/config", headers=root_headers).get_json() == {
        "lifetime_model": {"cutoff_date": "2099-01-01", "max_extension": 30}
    }


def test_missing_is_config_not_found_and_bad_bodies_are_400(client: FlaskClient, root_headers: dict) -> None:
    for method, url in (
        ("get", "/config/nope"),
        ("delete", "/config/nope"),
        ("get", "/config/nope/opt"),
        ("delete", "/config/nope/opt"),
    ):
        answer = getattr(client, method)(url, headers=root_headers)
        assert answer.status_code == 404 and answer.headers["ExceptionClass"] == "ConfigNotFound", url
    not_a_section = client.post("/config", json={"section": "flat"}, headers=root_headers)
    assert not_a_section.status_code == 400 and not_a_section.headers["ExceptionClass"] == "ValueError"
    assert client.post("/config", json={"s": {"o": {"nested": 1}}}, headers=root_headers).status_code == 400
    assert client.post("/config", json={"s": {"o": "v" * 5000}}, headers=root_headers).status_code == 400
    assert client.get("/config", headers={**root_headers, "Accept": "text/csv"}).status_code == 406


def test_users_may_not_read_or_write(client: FlaskClient, session: Session, root_headers: dict) -> None:
    user = make_account(session, "jdoe")
    assert client.put("/config/s/o/v", headers=root_headers).status_code == 201
    for method, url in (
        ("get", "/config"),
        ("get", "/config/s"),
        ("get", "/config/s/o"),
        ("put", "/config/s/o/w"),
        ("delete", "/config/s/o"),
        ("delete", "/config/s"),
    ):
        answer = getattr(client, method)(url, headers=user)
        assert answer.status_code == 401 and answer.headers["ExceptionClass"] == "AccessDenied", url
    assert client.post("/config", json={"s": {"o": "w"}}, headers=user).status_code == 401
    assert client.get("/config/s/o", headers=root_headers).get_json() == "v"
