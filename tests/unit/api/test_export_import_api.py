"""``/export`` and ``/import``: the set-up document in Rucio's shape, and a round trip through it."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.core import runtime_config
from datamgmt.core.rse import add_protocol, add_rse, add_rse_attribute, set_rse_limits
from datamgmt.core.rse_distance import set_distance
from tests.unit.api.conftest import make_account


def _site(session: Session) -> None:
    add_rse(session, "SITE_A")
    add_rse(session, "SITE_B", rse_type="TAPE")
    add_rse_attribute(session, "SITE_A", "tier", "1")
    add_rse_attribute(session, "SITE_A", "lfn2pfn_algorithm", "hash")
    add_protocol(
        session, "SITE_A", {"scheme": "root", "hostname": "xrd.example.org", "port": 1094, "prefix": "/data"}
    )
    set_rse_limits(session, "SITE_A", "MinFreeSpace", 1000)
    set_distance(session, "SITE_A", "SITE_B", 3)
    make_account(session, "jdoe", password="jdoe-password")
    session.commit()


def test_export_in_rucios_shape(client: FlaskClient, session: Session, root_headers: dict) -> None:
    _site(session)
    answer = client.get("/export", headers=root_headers)
    assert answer.status_code == 200 and answer.content_type == "application/json"
    data = answer.get_json()
    site = data["rses"]["SITE_A"]
    assert (site["rse"], site["rse_type"], site["MinFreeSpace"], site["lfn2pfn_algorithm"]) == (
        "SITE_A",
        "DISK",
        1000,
        "hash",
    )
    assert site["attributes"]["tier"] == "1" and site["attributes"]["SITE_A"] is True
    [protocol] = site["protocols"]
    assert (protocol["scheme"], protocol["hostname"], protocol["port"], protocol["prefix"]) == (
        "root",
        "xrd.example.org",
        1094,
        "/data",
    )
    assert data["rses"]["SITE_B"]["rse_type"] == "TAPE"
    assert (
        data["distances"]["SITE_A"]["SITE_B"]["distance"]
        == 3
        == data["distances"]["SITE_A"]["SITE_B"]["ranking"]
    )
    jdoe = next(a for a in data["accounts"] if a["account"] == "jdoe")
    assert jdoe["identities"] == [{"identity": "jdoe", "type": "USERPASS"}] and "password" not in str(data)
    assert "distances" not in client.get("/export/?distance=False", headers=root_headers).get_json()


def test_import_creates_updates_and_round_trips(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    _site(session)
    exported = client.get("/export", headers=root_headers).get_json()
    exported["rses"]["SITE_C"] = {
        "rse_type": "DISK",
        "deterministic": False,
        "availability_write": False,
        "attributes": {"tier": "2"},
        "protocols": [{"scheme": "davs", "hostname": "dav.example.org", "port": 443, "prefix": "/c"}],
    }
    exported["rses"]["SITE_A"]["attributes"]["tier"] = "0"
    exported["distances"]["SITE_C"] = {"SITE_A": {"distance": 7}}
    exported["accounts"].append(
        {
            "account": "newbie",
            "email": "n@example.org",
            "identities": [{"identity": "newbie", "type": "userpass", "password": "newbie-password"}],
        }
    )
    answer = client.post("/import", json=exported, headers=root_headers)
    assert answer.status_code == 201 and answer.get_data(as_text=True) == "Created", answer.get_data(
        as_text=True
    )
    again = client.get("/export/", headers=root_headers).get_json()
    site_c = again["rses"]["SITE_C"]
    assert (site_c["deterministic"], site_c["availability_write"], site_c["attributes"]["tier"]) == (
        False,
        False,
        "2",
    )
    assert [p["hostname"] for p in site_c["protocols"]] == ["dav.example.org"]
    assert again["rses"]["SITE_A"]["attributes"]["tier"] == "0"
    assert again["distances"]["SITE_C"]["SITE_A"]["distance"] == 7
    assert any(a["account"] == "newbie" for a in again["accounts"])
    login = client.get(
        "/auth/userpass",
        headers={
            "X-Rucio-Account": "newbie",
            "X-Rucio-Username": "newbie",
            "X-Rucio-Password": "newbie-password",
        },
    )
    assert login.status_code == 200
    # importing what was exported changes nothing
    assert client.post("/import/", json=again, headers=root_headers).status_code == 201
    assert client.get("/export", headers=root_headers).get_json()["rses"] == again["rses"]


def test_hard_sync_and_errors(client: FlaskClient, session: Session, root_headers: dict) -> None:
    _site(session)
    runtime_config.set_options(session, {"importer": {"rse_sync_method": "hard", "attr_sync_method": "hard"}})
    session.commit()
    document = {
        "rses": {
            "SITE_A": {
                "attributes": {"country": "CH"},
                "protocols": [{"scheme": "davs", "hostname": "d", "port": 443}],
            }
        }
    }
    assert client.post("/import", json=document, headers=root_headers).status_code == 201
    data = client.get("/export", headers=root_headers).get_json()
    assert list(data["rses"]) == ["SITE_A"]
    assert data["rses"]["SITE_A"]["attributes"] == {"SITE_A": True, "country": "CH"}
    assert [p["scheme"] for p in data["rses"]["SITE_A"]["protocols"]] == ["davs"]
    for bad in (
        [1],
        {"rses": ["SITE_A"]},
        {"rses": {"X": 1}},
        {"accounts": [{"email": "x"}]},
        {"distances": {"SITE_A": "near"}},
    ):
        answer = client.post("/import", json=bad, headers=root_headers)
        assert answer.status_code == 400 and answer.headers["ExceptionClass"] == "InvalidObject", bad
    user = make_account(session, "mallory")
    for method, url in (("get", "/export"), ("post", "/import")):
        refused = getattr(client, method)(url, json={}, headers=user)
        assert refused.status_code == 401 and refused.headers["ExceptionClass"] == "AccessDenied"
