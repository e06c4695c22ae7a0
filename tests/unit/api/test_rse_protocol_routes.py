"""Protocols by scheme (GET, PUT) and ``lfns2pfns``, at Rucio's paths and with Rucio's answers."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.core.rse import add_protocol, add_rse
from datamgmt.rse.lfn2pfn import hash_path
from tests.unit.api.conftest import make_account


def _site(session: Session) -> None:
    add_rse(session, "SITE")
    add_protocol(
        session, "SITE", {"scheme": "root", "hostname": "xrd.example.org", "port": 1094, "prefix": "/data/"}
    )
    add_protocol(session, "SITE", {"scheme": "file", "hostname": "localhost", "prefix": "/srv/site/"})
    session.commit()


def test_protocol_list_and_one_scheme(client: FlaskClient, session: Session, root_headers: dict) -> None:
    _site(session)
    listing = client.get("/rses/SITE/protocols", headers=root_headers).get_json()
    assert sorted(p["scheme"] for p in listing) == ["file", "root"]
    one = client.get("/rses/SITE/protocols/root", headers=root_headers).get_json()
    assert one["rse"] == "SITE" and [p["hostname"] for p in one["protocols"]] == ["xrd.example.org"]
    missing = client.get("/rses/SITE/protocols/davs", headers=root_headers)
    assert missing.status_code == 404 and missing.headers["ExceptionClass"] == "RSEProtocolNotSupported"


def test_rse_without_protocols_answers_404(client: FlaskClient, session: Session, root_headers: dict) -> None:
    add_rse(session, "BARE")
    session.commit()
    response = client.get("/rses/BARE/protocols", headers=root_headers)
    assert response.status_code == 404 and response.headers["ExceptionClass"] == "RSEProtocolNotSupported"


def test_update_protocol_changes_prefix_and_priorities(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    _site(session)
    body = {"prefix": "/moved/", "domains": {"wan": {"read": 3}}}
    assert (
        client.put(
            "/rses/SITE/protocols/root/xrd.example.org/1094", json=body, headers=root_headers
        ).status_code
        == 200
    )
    root = client.get("/rses/SITE/protocols/root", headers=root_headers).get_json()["protocols"][0]
    assert root["prefix"] == "/moved/" and root["domains"]["wan"]["read"] == 3
    assert root["domains"]["wan"]["write"] == 1  # untouched priorities stay


def test_update_protocol_errors(client: FlaskClient, session: Session, root_headers: dict) -> None:
    _site(session)
    unknown = client.put("/rses/SITE/protocols/davs", json={"prefix": "/x/"}, headers=root_headers)
    assert unknown.status_code == 404 and unknown.headers["ExceptionClass"] == "RSEProtocolNotSupported"
    bad = client.put("/rses/SITE/protocols/root", json={"colour": "red"}, headers=root_headers)
    assert bad.status_code == 400
    huge = client.put("/rses/SITE/protocols/root", json={"port": 2**63}, headers=root_headers)
    assert huge.status_code == 400
    add_protocol(session, "SITE", {"scheme": "root", "hostname": "other.example.org", "port": 1094})
    session.commit()
    clash = client.put(
        "/rses/SITE/protocols/root/other.example.org",
        json={"hostname": "xrd.example.org"},
        headers=root_headers,
    )
    assert clash.status_code == 409 and clash.headers["ExceptionClass"] == "Duplicate"


def test_update_protocol_needs_admin(client: FlaskClient, session: Session) -> None:
    _site(session)
    headers = make_account(session, "mallory")
    response = client.put("/rses/SITE/protocols/root", json={"prefix": "/evil/"}, headers=headers)
    assert response.status_code == 401 and response.headers["ExceptionClass"] == "AccessDenied"


def test_lfns2pfns_follows_the_algorithm_and_scheme(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    _site(session)
    query = "lfn=user.jdoe:f1&lfn=user.jdoe:f2&scheme=root"
    pfns = client.get(f"/rses/SITE/lfns2pfns?{query}", headers=root_headers).get_json()
    assert pfns == {
        f"user.jdoe:{n}": f"root://xrd.example.org:1094//data/{hash_path('user.jdoe', n)}"
        for n in ("f1", "f2")
    }
    bad = client.get("/rses/SITE/lfns2pfns?lfn=nocolon", headers=root_headers)
    assert bad.status_code == 400 and bad.headers["ExceptionClass"] == "InvalidPath"
    none = client.get("/rses/SITE/lfns2pfns?lfn=s:n&scheme=davs", headers=root_headers)
    assert none.status_code == 404
