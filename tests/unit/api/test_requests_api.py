"""``/requests/list`` and ``/requests/{scope}/{name}/{rse}``, as Rucio's request client asks."""

from __future__ import annotations

import json

from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from datamgmt.core.db.models import Request
from datamgmt.core.did import add_collection
from datamgmt.core.did_content import attach
from datamgmt.core.quota import set_local_account_limit
from datamgmt.core.replica import add_replicas
from datamgmt.core.rse import add_rse, add_rse_attribute, get_rse_id
from datamgmt.core.rule import add_rule
from datamgmt.core.scope import add_scope
from tests.unit.api.conftest import make_account


def _transfers(session: Session) -> None:
    """Two files on SRC, a rule to DST: two QUEUED requests, one given SRC as its source."""
    add_scope(session, "data", "root")
    for rse, site in (("SRC", "CERN"), ("DST", "FNAL")):
        add_rse(session, rse)
        add_rse_attribute(session, rse, "site", site)
        set_local_account_limit(session, "root", rse, -1)
    files = [{"scope": "data", "name": f"f{i}", "bytes": 1, "adler32": "00000001"} for i in range(2)]
    add_replicas(session, "SRC", files, "root")
    add_collection(session, "data", "ds", "DATASET", "root")
    attach(session, "data", "ds", files)
    add_rule(session, [{"scope": "data", "name": "ds"}], "root", 1, "DST")
    session.execute(update(Request).values(source_rse_id=get_rse_id(session, "SRC")))
    session.commit()


def _lines(response) -> list[dict]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.get_data(as_text=True)
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def test_list_by_rses_and_by_sites(client: FlaskClient, session: Session, root_headers: dict) -> None:
    _transfers(session)
    by_rse = _lines(
        client.get("/requests/list?src_rse=SRC&dst_rse=DST&request_states=Q", headers=root_headers)
    )
    assert sorted(r["name"] for r in by_rse) == ["f0", "f1"] and {r["state"] for r in by_rse} == {"QUEUED"}
    by_site = _lines(
        client.get("/requests/list?src_site=CERN&dst_site=FNAL&request_states=Q,S", headers=root_headers)
    )
    assert sorted(r["id"] for r in by_site) == sorted(r["id"] for r in by_rse)
    assert (
        client.get("/requests/list?src_rse=SRC&dst_rse=DST&request_states=D", headers=root_headers).get_data()
        == b""
    )


def test_one_request_by_did(client: FlaskClient, session: Session, root_headers: dict) -> None:
    _transfers(session)
    found = client.get("/requests/data/f0/DST", headers=root_headers)
    assert found.status_code == 200 and found.get_json()["name"] == "f0"
    missing = client.get("/requests/data/f0/SRC", headers=root_headers)
    assert missing.status_code == 404 and missing.headers["ExceptionClass"] == "RequestNotFound"


def test_bad_queries_and_permissions(client: FlaskClient, session: Session, root_headers: dict) -> None:
    _transfers(session)
    for query in (
        "src_rse=SRC&dst_rse=DST",
        "src_rse=SRC&request_states=Q",
        "src_rse=SRC&dst_rse=DST&request_states=Z",
    ):
        assert client.get(f"/requests/list?{query}", headers=root_headers).status_code == 400
    unknown_site = client.get(
        "/requests/list?src_site=NOPE&dst_site=FNAL&request_states=Q", headers=root_headers
    )
    assert unknown_site.status_code == 404
    user = make_account(session, "jdoe")
    assert (
        client.get("/requests/list?src_rse=SRC&dst_rse=DST&request_states=Q", headers=user).status_code == 401
    )
