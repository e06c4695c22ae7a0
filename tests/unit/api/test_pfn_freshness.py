"""Replica listings build PFNs from the RSE snapshot of the current generation
(core/rse_access.py): every change to an RSE's protocols, type or volatility must reach
the very next listing, in this process and in any other."""

from __future__ import annotations

import json

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.core.did import add_collection
from datamgmt.core.replica import add_replicas
from datamgmt.core.rse import add_protocol, add_rse
from datamgmt.core.scope import add_scope

ROOT = {"scheme": "root", "hostname": "xrd.example.org", "port": 1094, "prefix": "/data/"}


def _pfns(client: FlaskClient, headers: dict[str, str]) -> dict[str, dict]:
    response = client.get("/replicas/fresh/f", headers=headers)
    assert response.status_code == 200, response.data
    (line,) = [json.loads(text) for text in response.data.splitlines()]
    return line["pfns"]


def test_every_rse_change_reaches_the_next_listing(
    client: FlaskClient, session: Session, root_headers: dict[str, str]
) -> None:
    add_scope(session, "fresh", "root")
    add_rse(session, "FRESH")
    add_protocol(session, "FRESH", ROOT)
    add_replicas(
        session, "FRESH", [{"scope": "fresh", "name": "f", "bytes": 1, "adler32": "0cc737eb"}], "root"
    )
    add_collection(session, "fresh", "ds", "DATASET", "root")
    session.commit()
    (first,) = _pfns(client, root_headers)
    assert first.startswith("root://xrd.example.org:1094//data/fresh/")

    moved = client.put("/rses/FRESH/protocols/root", json={"prefix": "/moved/"}, headers=root_headers)
    assert moved.status_code == 200, moved.data
    assert [pfn.split("//")[2].split("/")[0] for pfn in _pfns(client, root_headers)] == ["moved"]

    davs = {"scheme": "davs", "hostname": "dav.example.org", "port": 443, "prefix": "/dav/"}
    added = client.post("/rses/FRESH/protocols/davs", data=json.dumps(davs), headers=root_headers)
    assert added.status_code == 201, added.data
    assert sorted(pfn.split(":")[0] for pfn in _pfns(client, root_headers)) == ["davs", "root"]

    assert client.delete("/rses/FRESH/protocols/root", headers=root_headers).status_code == 200
    (only,) = _pfns(client, root_headers)
    assert only.startswith("davs://dav.example.org:443/dav/fresh/")

    volatile = client.put("/rses/FRESH", json={"volatile": True}, headers=root_headers)
    assert volatile.status_code == 201, volatile.data
    assert [entry["volatile"] for entry in _pfns(client, root_headers).values()] == [True]

    tape = client.put("/rses/FRESH", json={"rse_type": "TAPE"}, headers=root_headers)
    assert tape.status_code == 201, tape.data
    assert [entry["type"] for entry in _pfns(client, root_headers).values()] == ["TAPE"]
