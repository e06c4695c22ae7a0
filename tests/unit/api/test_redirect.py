"""``/redirect``: a 303 to the best HTTP PFN of a file, or its PFNs as Metalink 4."""

from __future__ import annotations

from flask.testing import FlaskClient
from rucio.common.utils import parse_replicas_from_string
from sqlalchemy.orm import Session

from datamgmt.core.replica import add_replicas
from datamgmt.core.rse import add_protocol, add_rse
from datamgmt.core.scope import add_scope
from datamgmt.rse.lfn2pfn import hash_path


def _world(session: Session) -> None:
    add_scope(session, "data", "root")
    for rse, scheme, host in (("WEB", "davs", "dav.example.org"), ("XRD", "root", "xrd.example.org")):
        add_rse(session, rse)
        add_protocol(session, rse, {"scheme": scheme, "hostname": host, "port": 443, "prefix": "/p/"})
    file = {"scope": "data", "name": "f1", "bytes": 3, "adler32": "0cc737eb"}
    add_replicas(session, "WEB", [file], "root")
    add_replicas(session, "XRD", [file], "root")
    session.commit()


def test_redirects_to_https_for_a_davs_replica(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    _world(session)
    for path in ("/redirect/data/f1", "/redirect/data/f1/"):
        response = client.get(path, headers=root_headers)
        assert response.status_code == 303
        assert response.headers["Location"] == f"https://dav.example.org:443/p/{hash_path('data', 'f1')}"


def test_rse_and_scheme_choices(client: FlaskClient, session: Session, root_headers: dict) -> None:
    _world(session)
    on_xrd = client.get("/redirect/data/f1?rse=XRD&schemes=root", headers=root_headers)
    assert on_xrd.status_code == 303 and on_xrd.headers["Location"].startswith("root://xrd.example.org")
    none = client.get("/redirect/data/f1?rse=XRD", headers=root_headers)  # XRD has no HTTP protocol
    assert none.status_code == 404 and none.headers["ExceptionClass"] == "ReplicaNotFound"
    missing = client.get("/redirect/data/nothing", headers=root_headers)
    assert missing.status_code == 404 and missing.headers["ExceptionClass"] == "DataIdentifierNotFound"


def test_metalink_lists_every_pfn(client: FlaskClient, session: Session, root_headers: dict) -> None:
    _world(session)
    response = client.get("/redirect/data/f1/metalink", headers=root_headers)
    assert response.status_code == 200 and response.content_type == "application/metalink4+xml"
    (parsed,) = parse_replicas_from_string(response.get_data(as_text=True))
    assert sorted(source["rse"] for source in parsed["sources"]) == ["WEB", "XRD"]


def test_redirect_needs_a_token(client: FlaskClient, session: Session) -> None:
    _world(session)
    assert client.get("/redirect/data/f1").status_code in (400, 401)


def test_slash_twins_answer_as_rucio_serves_them(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    _world(session)
    body = {"dids": [{"scope": "data", "name": "f1"}]}
    assert client.post("/replicas/list/", json=body, headers=root_headers).status_code == 200
    assert client.get("/ping/").status_code == 200
