"""``/vos``: each route answers as an unmodified Rucio 41 server in single-VO mode does.

Rucio checks the permission before the mode: a user is refused with 401 ``AccessDenied`` and the
action's own message, root and admins learn that VO operations need multi-VO mode (409
``UnsupportedOperation``). Recovering a root identity works for ``def``, the one VO there is.
"""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.unit.api.conftest import make_account

SINGLE_VO = "VO operations cannot be performed in single VO mode."
RECOVER = {
    "identity": "root-recovered",
    "authtype": "USERPASS",
    "email": "root@example.org",
    "password": "a-long-password",
}


def _error(response) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    body = json.loads(response.get_data())
    assert response.headers["ExceptionClass"] == body["ExceptionClass"]
    return response.status_code, body["ExceptionClass"], body["ExceptionMessage"]


ROUTES = [
    ("GET", "/vos/", None, "cannot list VOs"),
    ("POST", "/vos/abc", {"description": "A VO", "email": "vo@example.org"}, "cannot add a VO"),
    ("PUT", "/vos/abc", {"email": "vo@example.org"}, "cannot update VO"),
    ("POST", "/vos/def/recover", RECOVER, "can not recover root identity"),
]


@pytest.mark.parametrize(("method", "path", "body", "refusal"), ROUTES)
def test_a_user_is_refused_first_with_rucios_message(
    client: FlaskClient, session: Session, method: str, path: str, body: object, refusal: str
) -> None:
    user = make_account(session, "jdoe")
    session.rollback()
    response = client.open(path, method=method, json=body, headers=user)
    assert _error(response) == (401, "AccessDenied", f"Account jdoe {refusal}. ")
    anonymous = client.open(path, method=method, json=body)
    assert _error(anonymous)[:2] == (401, "CannotAuthenticate")


@pytest.mark.parametrize(("method", "path", "body"), [route[:3] for route in ROUTES[:3]])
@pytest.mark.parametrize("who", ["root", "admin"])
def test_root_and_admins_meet_single_vo_mode(
    client: FlaskClient, session: Session, root_headers: dict, who: str, method: str, path: str, body: object
) -> None:
    headers = root_headers if who == "root" else make_account(session, "boss", admin=True)
    session.rollback()
    response = client.open(path, method=method, json=body, headers=headers)
    assert _error(response) == (409, "UnsupportedOperation", SINGLE_VO)


def test_listing_honours_accept_and_adding_needs_no_body(client: FlaskClient, root_headers: dict) -> None:
    refused = client.get("/vos/", headers={**root_headers, "Accept": "application/json"})
    assert _error(refused)[:2] == (406, "UnsupportedRequestedContentType")
    assert _error(client.post("/vos/abc", headers=root_headers))[:2] == (409, "UnsupportedOperation")


def test_bad_names_and_bodies_are_refused_before_the_permission(
    client: FlaskClient, session: Session
) -> None:
    user = make_account(session, "jdoe")
    session.rollback()
    bad_name = client.post("/vos/a_b", headers=user)
    assert _error(bad_name) == (400, "InputValidationError", "Invalid characters in VO name.")
    no_body = client.put("/vos/abc", headers=user)
    assert _error(no_body)[:2] == (400, "ValueError")
    no_email = client.post("/vos/def/recover", json={"identity": "x", "authtype": "USERPASS"}, headers=user)
    assert _error(no_email) == (400, "KeyError", "'email' not defined")


def test_recovering_roots_identity_maps_it_to_root(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    session.rollback()
    recovered = client.post("/vos/def/recover", json=RECOVER, headers=root_headers)
    assert (recovered.status_code, recovered.get_data(as_text=True)) == (201, "Created")
    login = client.get(
        "/auth/userpass",
        headers={
            "X-Rucio-Account": "root",
            "X-Rucio-Username": "root-recovered",
            "X-Rucio-Password": "a-long-password",
        },
    )
    assert login.status_code == 200 and login.headers["X-Rucio-Auth-Account"] == "root"
    again = client.post("/vos/def/recover", json=RECOVER, headers=root_headers)
    assert _error(again)[:2] == (409, "Duplicate")


def test_an_unknown_authtype_is_bad_input(client: FlaskClient, session: Session, root_headers: dict) -> None:
    session.rollback()
    response = client.post("/vos/def/recover", json={**RECOVER, "authtype": "KERBEROS"}, headers=root_headers)
    assert _error(response)[:2] == (400, "InputValidationError")


def test_another_vo_has_no_root_account(client: FlaskClient, session: Session, root_headers: dict) -> None:
    session.rollback()
    response = client.post("/vos/abc/recover", json=RECOVER, headers=root_headers)
    assert _error(response) == (404, "AccountNotFound", "Account 'root' does not exist.")
    identities = client.get("/accounts/root/identities", headers=root_headers).get_data(as_text=True)
    assert "root-recovered" not in identities
