"""Dataset-level replica summaries and the DIDs behind PFNs, over REST, as Rucio answers them."""

from __future__ import annotations

import json

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.unit.api.conftest import make_account
from tests.unit.api.test_bad_replicas_api import DATA, failure, lines, pfn_of, post, sites  # noqa: F401 - fixture

FULL = sum(len(content) for content in DATA.values())


def test_dataset_replicas_count_what_each_rse_holds(client: FlaskClient, session: Session, sites) -> None:  # noqa: F811
    jdoe = make_account(session, "jdoe")
    session.rollback()
    rows = lines(client.get("/replicas/data/ds/datasets", headers=jdoe))
    summary = {
        r["rse"]: (r["length"], r["available_length"], r["bytes"], r["available_bytes"], r["state"])
        for r in rows
    }
    assert summary == {"SITE": (2, 2, FULL, FULL, "AVAILABLE"), "SRC": (2, 1, FULL, 300, "UNAVAILABLE")}
    assert set(rows[0]) >= {"scope", "name", "rse_id", "created_at", "updated_at", "accessed_at"}
    assert lines(client.get("/replicas/data/nothing/datasets", headers=jdoe)) == []
    bulk = lines(post(client, "/replicas/datasets_bulk", {"dids": [{"scope": "data", "name": "ds"}]}, jdoe))
    assert sorted((r["rse"], r["available_length"]) for r in bulk) == [("SITE", 2), ("SRC", 1)]
    assert failure(post(client, "/replicas/datasets_bulk", {"dids": []}, jdoe)) == (
        400,
        "InputValidationError",
    )
    on_src = lines(client.get("/replicas/rse/SRC", headers=jdoe))
    assert [(r["scope"], r["name"], r["available_bytes"]) for r in on_src] == [("data", "ds", 300)]
    assert failure(client.get("/replicas/rse/NOWHERE", headers=jdoe)) == (404, "RSENotFound")
    assert lines(client.get("/replicas/data/ds/datasets_vp", headers=jdoe)) == ["other"]
    refused = client.get("/replicas/data/ds/datasets", headers={**jdoe, "Accept": "application/json"})
    assert failure(refused) == (406, "UnsupportedRequestedContentType")


def test_dids_of_pfns(client: FlaskClient, session: Session, sites) -> None:  # noqa: F811
    jdoe = make_account(session, "jdoe")
    on_site, on_src = pfn_of(session, "SITE", "b.root"), pfn_of(session, "SRC", "a.root")
    session.rollback()
    answer = post(client, "/replicas/dids", {"pfns": [on_site, on_src, "file:///x"]}, jdoe)
    assert sorted(map(json.dumps, lines(answer))) == sorted(
        map(
            json.dumps,
            [{on_site: {"scope": "data", "name": "b.root"}}, {on_src: {"scope": "data", "name": "a.root"}}],
        )
    )
    only_src = lines(post(client, "/replicas/dids", {"pfns": [on_site, on_src], "rse": "SRC"}, jdoe))
    assert only_src == [{on_src: {"scope": "data", "name": "a.root"}}]
    assert failure(post(client, "/replicas/dids", {"pfns": [1]}, jdoe)) == (400, "InvalidType")
