"""Multi-VO (``[common] multi_vo = true``): each VO is a catalogue of its own.

Two VOs may hold the same account, scope, DID and RSE names; a token, an expression result or
a storage area of one is never valid in, seen by or shared with the other.  Only an admin of
the default VO administers VOs.
"""

from __future__ import annotations

import json

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.api.app import create_app
from datamgmt.core import vo as vos
from datamgmt.core.db.session import transaction
from datamgmt.core.invariants import check_catalogue
from tests.conftest import ROOT_PASSWORD
from tests.unit.api.conftest import make_account
from tests.vo_catalogues import multi_vo  # noqa: F401 (a fixture)

VO = "abc"


@pytest.fixture
def vo_app(multi_vo: str, root: str) -> Flask:
    return create_app(database_url=multi_vo)


@pytest.fixture
def vo_client(vo_app: Flask) -> FlaskClient:
    return vo_app.test_client()


def _error(response) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    return response.status_code, json.loads(response.get_data())["ExceptionClass"]


def _whoami(client: FlaskClient, headers: dict[str, str]) -> str:
    response = client.get("/accounts/whoami", headers=headers)
    assert response.status_code == 303, response.get_data(as_text=True)
    return str(response.headers["Location"])


def _login(client: FlaskClient, vo: str) -> dict[str, str]:
    response = client.get(
        "/auth/userpass",
        headers={
            "X-Rucio-Account": "root",
            "X-Rucio-Username": "root",
            "X-Rucio-Password": ROOT_PASSWORD,
            "X-Rucio-VO": vo,
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return {"X-Rucio-Auth-Token": response.headers["X-Rucio-Auth-Token"], "X-Rucio-VO": vo}


def _add_vo(client: FlaskClient, headers: dict[str, str], vo: str = VO) -> None:
    response = client.post(
        f"/vos/{vo}", json={"description": "A VO", "email": "vo@example.org"}, headers=headers
    )
    assert response.status_code == 201, response.get_data(as_text=True)


def test_the_default_vos_root_adds_lists_and_updates_vos(
    vo_client: FlaskClient, root_headers: dict[str, str]
) -> None:
    _add_vo(vo_client, root_headers)
    assert _error(vo_client.post(f"/vos/{VO}", headers=root_headers)) == (409, "Duplicate")
    assert _error(vo_client.post("/vos/def", headers=root_headers)) == (409, "Duplicate")
    assert _error(vo_client.post("/vos/ABC", headers=root_headers)) == (400, "InputValidationError")
    updated = vo_client.put(f"/vos/{VO}", json={"email": "new@example.org"}, headers=root_headers)
    assert updated.status_code == 200
    assert _error(vo_client.put("/vos/xyz", json={"email": "x@example.org"}, headers=root_headers)) == (
        404,
        "VONotFound",
    )
    listed = [
        json.loads(line)
        for line in vo_client.get("/vos/", headers=root_headers).get_data(as_text=True).splitlines()
    ]
    assert [(row["vo"], row["description"], row["email"]) for row in listed] == [
        (VO, "A VO", "new@example.org")
    ]


def test_the_same_names_live_apart_in_each_vo(vo_client: FlaskClient, root_headers: dict[str, str]) -> None:
    _add_vo(vo_client, root_headers)
    theirs = _login(vo_client, VO)
    ours = {**root_headers, "X-Rucio-VO": "def"}
    assert _whoami(vo_client, theirs) == "root"
    for headers, name in ((ours, "only-in-def"), (theirs, "only-in-abc")):
        assert vo_client.post("/scopes/root/user.x", headers=headers).status_code == 201
        assert (
            vo_client.post(f"/dids/user.x/{name}", json={"type": "DATASET"}, headers=headers).status_code
            == 201
        )
    assert vo_client.get("/dids/user.x/only-in-def", headers=ours).status_code == 200
    assert _error(vo_client.get("/dids/user.x/only-in-def", headers=theirs)) == (
        404,
        "DataIdentifierNotFound",
    )
    assert _error(vo_client.get("/dids/user.x/only-in-abc", headers=ours)) == (404, "DataIdentifierNotFound")
    assert vo_client.get("/dids/user.x/only-in-abc", headers=theirs).status_code == 200
    # A token is valid in the VO that issued it, and only there (also once remembered).
    assert _error(vo_client.get("/accounts/whoami", headers={**theirs, "X-Rucio-VO": "def"})) == (
        401,
        "CannotAuthenticate",
    )
    assert _error(vo_client.get("/accounts/whoami", headers={**ours, "X-Rucio-VO": VO})) == (
        401,
        "CannotAuthenticate",
    )
    with transaction(vos.catalogue_url(None, VO), read_only=True) as session:
        assert check_catalogue(session).ok


def test_an_unknown_or_bad_vo_is_refused(vo_client: FlaskClient, root_headers: dict[str, str]) -> None:
    assert _error(vo_client.get("/accounts/whoami", headers={**root_headers, "X-Rucio-VO": "xyz"})) == (
        401,
        "CannotAuthenticate",
    )
    assert _error(vo_client.get("/accounts/whoami", headers={**root_headers, "X-Rucio-VO": "a/b"})) == (
        400,
        "InputValidationError",
    )


def test_only_admins_of_the_default_vo_administer_vos(
    vo_client: FlaskClient, session: Session, root_headers: dict[str, str]
) -> None:
    user = make_account(session, "jdoe")
    session.rollback()
    assert _error(vo_client.post("/vos/xyz", headers=user)) == (401, "AccessDenied")
    _add_vo(vo_client, root_headers)
    their_root = _login(vo_client, VO)
    assert _error(vo_client.post("/vos/xyz", headers=their_root)) == (401, "AccessDenied")
    assert _error(vo_client.get("/vos/", headers=their_root)) == (401, "AccessDenied")


def test_recovering_root_of_a_vo_changes_that_vo_only(
    vo_client: FlaskClient, root_headers: dict[str, str]
) -> None:
    _add_vo(vo_client, root_headers)
    body = {
        "identity": "vo-admin",
        "authtype": "USERPASS",
        "email": "a@example.org",
        "password": "long-password",
    }
    assert vo_client.post(f"/vos/{VO}/recover", json=body, headers=root_headers).status_code == 201
    login = {"X-Rucio-Account": "root", "X-Rucio-Username": "vo-admin", "X-Rucio-Password": "long-password"}
    assert vo_client.get("/auth/userpass", headers={**login, "X-Rucio-VO": VO}).status_code == 200
    assert _error(vo_client.get("/auth/userpass", headers={**login, "X-Rucio-VO": "def"})) == (
        401,
        "CannotAuthenticate",
    )


def test_expressions_select_the_rses_of_the_callers_vo(
    vo_client: FlaskClient, root_headers: dict[str, str]
) -> None:
    _add_vo(vo_client, root_headers)
    theirs = _login(vo_client, VO)
    for headers, rse in ((root_headers, "DEF_DISK"), (theirs, "ABC_DISK")):
        assert vo_client.post(f"/rses/{rse}", json={}, headers=headers).status_code == 201
        assert (
            vo_client.post(f"/rses/{rse}/attr/tier", json={"value": "1"}, headers=headers).status_code == 201
        )
    for headers, rse in ((root_headers, "DEF_DISK"), (theirs, "ABC_DISK")):
        for _ in range(2):  # computed, then remembered
            listed = vo_client.get("/rses/?expression=tier=1", headers=headers).get_data(as_text=True)
            assert [json.loads(line)["rse"] for line in listed.splitlines()] == [rse]


def test_a_vo_cannot_reach_into_another_vos_storage(
    vo_client: FlaskClient, root_headers: dict[str, str]
) -> None:
    _add_vo(vo_client, root_headers)
    theirs = _login(vo_client, VO)
    protocol = {"hostname": "localhost", "port": 0, "prefix": "/data/def", "impl": "posix"}
    assert vo_client.post("/rses/SITE", json={}, headers=root_headers).status_code == 201
    assert vo_client.post("/rses/SITE/protocols/file", json=protocol, headers=root_headers).status_code == 201
    assert vo_client.post("/rses/SITE", json={}, headers=theirs).status_code == 201
    for prefix in ("/data/def", "/data/def/sub", "/data", "/"):
        refused = vo_client.post(
            "/rses/SITE/protocols/file", json={**protocol, "prefix": prefix}, headers=theirs
        )
        assert _error(refused) == (400, "InputValidationError"), prefix
    apart = vo_client.post(
        "/rses/SITE/protocols/file", json={**protocol, "prefix": "/data/abc"}, headers=theirs
    )
    assert apart.status_code == 201
    moved = vo_client.put("/rses/SITE/protocols/file", json={"prefix": "/data/def/x"}, headers=theirs)
    assert _error(moved) == (400, "InputValidationError")
    imported = {
        "rses": {
            "IMPORTED": {
                "rse_type": "DISK",
                "protocols": [{**protocol, "scheme": "file", "prefix": "/data/def/y"}],
            }
        }
    }
    assert _error(vo_client.post("/import", json=imported, headers=theirs)) == (400, "InputValidationError")
    assert _error(vo_client.get("/rses/IMPORTED", headers=theirs)) == (404, "RSENotFound")
    elsewhere = vo_client.post(
        "/rses/SITE/protocols/root", json={**protocol, "hostname": "other.example.org"}, headers=theirs
    )
    assert elsewhere.status_code == 201


def test_single_vo_mode_ignores_the_vo_header(client: FlaskClient, root_headers: dict[str, str]) -> None:
    assert _whoami(client, {**root_headers, "X-Rucio-VO": "abc"}) == "root"
