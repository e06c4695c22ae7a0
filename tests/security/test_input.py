"""Hostile input: oversized bodies, monstrous RSE expressions, names with a trailing newline,
bulk DID registration held to the single route's checks, and published URLs from the Host header."""

from __future__ import annotations

import json
import os
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.api.app import create_app
from datamgmt.config import DEFAULTS, Config
from datamgmt.core import did, did_content, expression, metadata, replica, rse, scope


def _app(db: str, **settings: str) -> Flask:
    return create_app(Config(environ={**os.environ, **settings}), database_url=db)


def test_an_oversized_body_is_413_with_the_limit_configured(db: str, root_headers: dict[str, str]) -> None:
    assert 0 < int(DEFAULTS["api"]["max_body_bytes"]) <= 256 * 1024 * 1024
    client = _app(db, DATAMGMT_API_MAX_BODY_BYTES="4096").test_client()
    body = json.dumps([{"scope": "user.root", "name": f"ds{i}", "type": "DATASET"} for i in range(200)])
    response = client.post("/dids/", data=body, headers=root_headers, content_type="application/json")
    assert response.status_code == 413
    assert response.headers["ExceptionClass"] == "RequestEntityTooLarge"


@pytest.mark.parametrize(
    "monster",
    [
        "(" * 1000 + "tier=1" + ")" * 1000,  # deep nesting: pyparsing's recursion
        "|".join(["tier=1"] * 300),  # a long chain: a left-deep tree, evaluated recursively
        "A" * 100_000,  # a huge key
        "(" * 40 + "A" + ")" * 40,
    ],
    ids=["nested", "chain", "huge", "nested40"],
)
def test_monstrous_rse_expressions_are_400_never_500(
    client: FlaskClient, root_headers: dict[str, str], monster: str
) -> None:
    response = client.get("/rses/", query_string={"expression": monster}, headers=root_headers)
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)[:300]
    assert response.headers["ExceptionClass"] == "InvalidRSEExpression"
    assert len(response.get_data()) < 1000, "the expression is never echoed back whole"


def test_the_parse_cache_is_bounded_by_memory() -> None:
    expression.parse_tree.cache_clear()
    cap = expression.parse_tree.cache_info().maxsize
    assert cap is not None and cap * expression.MAX_EXPRESSION_LENGTH <= 16 * 1024 * 1024
    with pytest.raises(Exception, match="too long"):
        expression.parse_tree("A" * (expression.MAX_EXPRESSION_LENGTH + 1))
    assert expression.parse_tree.cache_info().currsize == 0


@pytest.fixture
def owned_scope(session: Session, root: str) -> str:
    scope.add_scope(session, "user.root", "root")
    session.commit()
    return "user.root"


@pytest.mark.parametrize(
    "name",
    ["run1\n", "run1\n\n", "bad name", "a" * 300, "../etc", 5, None, ""],
    ids=["newline", "newlines", "space", "long", "dotdot", "int", "none", "empty"],
)
def test_bulk_registration_refuses_every_name_the_single_route_refuses(
    client: FlaskClient, root_headers: dict[str, str], owned_scope: str, name: object
) -> None:
    bulk = client.post(
        "/dids/",
        json=[
            {"scope": owned_scope, "name": "good", "type": "DATASET"},
            {"scope": owned_scope, "name": name, "type": "DATASET"},
        ],
        headers=root_headers,
    )
    assert bulk.status_code == 400, bulk.get_data(as_text=True)[:300]
    assert bulk.headers["ExceptionClass"] in (
        "InputValidationError",
        "ValueError",
        "KeyError",
        "InvalidObject",
    )
    if isinstance(name, str) and name and "/" not in name:
        single = client.post(
            f"/dids/{owned_scope}/{quote(name)}", json={"type": "DATASET"}, headers=root_headers
        )
        # The single route refuses it too: 400, or 404 where no route matches ('.' stops at a newline).
        assert single.status_code in (400, 404), single.status_code
    assert client.get(f"/dids/{owned_scope}/good", headers=root_headers).status_code == 404, "all or nothing"


def test_a_trailing_newline_is_refused_everywhere(client: FlaskClient, root_headers: dict[str, str]) -> None:
    assert (
        client.post(
            "/accounts/alice%0A", json={"type": "USER", "email": "a@example.org"}, headers=root_headers
        ).status_code
        == 400
    )
    assert client.post("/scopes/root/scope%0A", headers=root_headers).status_code == 400
    assert client.post("/rses/SITE%0A", json={}, headers=root_headers).status_code == 400


def test_bulk_registration_answers_both_spellings_without_redirect(
    client: FlaskClient, root_headers: dict[str, str], owned_scope: str
) -> None:
    for path, name in (("/dids", "a"), ("/dids/", "b")):
        response = client.post(
            path, json=[{"scope": owned_scope, "name": name, "type": "DATASET"}], headers=root_headers
        )
        assert response.status_code == 201, (path, response.status_code, response.headers.get("Location"))


@pytest.fixture
def publishable(session: Session, root: str) -> str:
    scope.add_scope(session, "data", "root")
    rse.add_rse(session, "SITE-A")
    did.add_collection(session, "data", "ds", "DATASET", "root")
    replica.add_replicas(
        session, "SITE-A", [{"scope": "data", "name": "f", "bytes": 1, "adler32": "00000001"}], "root"
    )
    did_content.attach(session, "data", "ds", [{"scope": "data", "name": "f"}])
    metadata.set_metadata_bulk(
        session,
        "data",
        "ds",
        {"title": "T", "creator": "Doe, Jane", "publisher": "Lab", "publication_year": 2024},
    )
    session.commit()
    return "data:ds"


def test_published_urls_never_come_from_the_host_header(
    db: str, root_headers: dict[str, str], publishable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    evil = {**root_headers, "Host": "evil.example"}
    monkeypatch.delenv("DATAMGMT_API_BASE_URL", raising=False)
    unconfigured = create_app(database_url=db).test_client()
    refused = unconfigured.post("/dids/data/ds/publish", json={}, headers=evil)
    assert refused.status_code == 503 and "base_url" in refused.get_json(force=True)["ExceptionMessage"]
    assert (
        b"evil.example"
        not in unconfigured.get("/oai_pmh?verb=Identify", headers={"Host": "evil.example"}).data
    )

    monkeypatch.setenv("DATAMGMT_API_BASE_URL", "https://data.example.org")
    client = create_app(database_url=db).test_client()
    published = client.post("/dids/data/ds/publish", json={}, headers=evil)
    assert published.status_code in (200, 201), published.get_data(as_text=True)
    assert "evil.example" not in published.get_data(as_text=True)
    assert "https://data.example.org/pid/" in published.get_data(as_text=True)
    identify = client.get("/oai_pmh?verb=Identify", headers={"Host": "evil.example"}).get_data(as_text=True)
    assert ">https://data.example.org/oai_pmh</baseURL>" in identify


def test_a_deeply_nested_body_is_400_not_500(client: FlaskClient, root_headers: dict[str, str]) -> None:
    """json.loads raises RecursionError (not ValueError) on deep nesting; a small body must not make a 500."""
    deep = "[" * 100_000 + "]" * 100_000
    response = client.post("/dids/", data=deep, headers=root_headers)
    assert (response.status_code, response.headers["ExceptionClass"]) == (400, "ValueError")


@pytest.mark.parametrize("depth", [900, 990])
def test_a_nested_value_of_the_wrong_type_is_400(
    client: FlaskClient, root_headers: dict[str, str], depth: int
) -> None:
    """Schema errors show the value bounded, without rendering all of its nesting."""
    body = '{"rse": ' + "[" * depth + "]" * depth + ', "files": []}'
    response = client.post("/replicas", data=body, headers=root_headers)
    assert response.status_code == 400, response.get_data(as_text=True)[:200]


def test_an_integer_query_beyond_64_bits_is_400(client: FlaskClient, root_headers: dict[str, str]) -> None:
    """Found by the OpenAPI fuzz test: the database driver fails on it (a 500 before)."""
    response = client.get("/opendata/public/dids?limit=9223372036854775808", headers=root_headers)
    assert (response.status_code, response.headers["ExceptionClass"]) == (400, "InputValidationError")
