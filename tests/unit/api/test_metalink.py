"""Replica listings as Metalink 4: what the stock client's parser reads back, escaping included."""

from __future__ import annotations

from flask.testing import FlaskClient
from rucio.common.utils import parse_replicas_from_string
from sqlalchemy.orm import Session

from datamgmt.api.metalink import metalink
from datamgmt.core.did import add_collection
from datamgmt.core.did_content import attach
from datamgmt.core.replica import add_replicas
from datamgmt.core.rse import add_protocol, add_rse, add_rse_attribute
from datamgmt.core.scope import add_scope

METALINK = "application/metalink4+xml"
ODD = "odd-name_1.root"


def _world(session: Session) -> None:
    add_scope(session, "user.x", "root")
    add_rse(session, "SITE")
    add_rse_attribute(session, "SITE", "type", "SCRATCHDISK")
    add_protocol(
        session, "SITE", {"scheme": "root", "hostname": "xrd.example.org", "port": 1094, "prefix": "/data/"}
    )
    files = [
        {"scope": "user.x", "name": n, "bytes": 10, "adler32": "0cc737eb", "md5": "0" * 32}
        for n in ("f1", ODD)
    ]
    add_replicas(session, "SITE", files, "root")
    add_collection(session, "user.x", "ds", "DATASET", "root")
    attach(session, "user.x", "ds", files)
    session.commit()


def test_metalink_listing_parses_with_the_stock_client(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    _world(session)
    body = {"dids": [{"scope": "user.x", "name": "ds"}], "resolve_parents": True}
    response = client.post("/replicas/list", json=body, headers={**root_headers, "Accept": METALINK})
    assert response.status_code == 200 and response.content_type == METALINK
    files = {item["did"]: item for item in parse_replicas_from_string(response.get_data(as_text=True))}
    assert set(files) == {"user.x:f1", f"user.x:{ODD}"}
    odd = files[f"user.x:{ODD}"]
    assert odd["adler32"] == "0cc737eb" and odd["md5"] == "0" * 32 and odd["bytes"] == 10
    assert odd["parent_dids"] == {"user.x:ds"}
    (source,) = odd["sources"]
    assert source["rse"] == "SITE" and source["pfn"].startswith("root://xrd.example.org:1094//data/user/x/")
    assert source["pfn"].endswith(ODD)


def test_json_stays_the_default_and_other_types_are_refused(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    _world(session)
    body = {"dids": [{"scope": "user.x", "name": "f1"}]}
    assert (
        client.post("/replicas/list", json=body, headers=root_headers).content_type
        == "application/x-json-stream"
    )
    refused = client.post("/replicas/list", json=body, headers={**root_headers, "Accept": "text/csv"})
    assert refused.status_code == 406


def test_an_empty_listing_is_a_well_formed_document(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    _world(session)
    add_collection(session, "user.x", "empty", "DATASET", "root")
    session.commit()
    body = {"dids": [{"scope": "user.x", "name": "empty"}]}
    response = client.post("/replicas/list", json=body, headers={**root_headers, "Accept": METALINK})
    assert parse_replicas_from_string(response.get_data(as_text=True)) == []


def test_markup_in_values_is_escaped() -> None:
    entry = {
        "scope": "user.x",
        "name": "f",
        "bytes": 1,
        "adler32": None,
        "md5": None,
        "parents": ["user.x:ds"],
        "pfns": {
            'https://h/p?a=1&b=<2>"': {"rse": "R&D", "domain": "wan", "priority": 1, "client_extract": False}
        },
    }
    (parsed,) = parse_replicas_from_string("".join(metalink(iter([entry]))))
    assert parsed["sources"] == [
        {
            "rse": "R&D",
            "domain": "wan",
            "priority": "1",
            "client_extract": False,
            "pfn": 'https://h/p?a=1&b=<2>"',
        }
    ]
