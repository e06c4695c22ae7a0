"""Rucio's REST conventions as the stock client depends on them (docs/rucio-compatibility.md)."""

from __future__ import annotations

import json
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.api.errors import header_message
from datamgmt.exceptions import DataIdentifierNotFound
from tests.conftest import ROOT_PASSWORD
from tests.unit.api.conftest import make_account

RFC1123 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} UTC$")


def test_ping_needs_no_token(client: FlaskClient) -> None:
    response = client.get("/ping")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert "version" in response.get_json()


def test_login_answers_token_headers_and_empty_body(client: FlaskClient) -> None:
    response = client.get(
        "/auth/userpass",
        headers={
            "X-Rucio-Account": "root",
            "X-Rucio-Username": "root",
            "X-Rucio-Password": ROOT_PASSWORD,
            "X-Rucio-Auth-Token": "",
        },
    )
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["X-Rucio-Auth-Token"].startswith("root-")
    assert RFC1123.match(response.headers["X-Rucio-Auth-Token-Expires"])
    assert response.headers["X-Rucio-Auth-Account"] == "root"


def test_wrong_password_is_401_cannot_authenticate(client: FlaskClient) -> None:
    response = client.get(
        "/auth/userpass",
        headers={"X-Rucio-Account": "root", "X-Rucio-Username": "root", "X-Rucio-Password": "nope"},
    )
    assert response.status_code == 401
    assert response.headers["ExceptionClass"] == "CannotAuthenticate"
    assert response.get_json(force=True)["ExceptionMessage"] == (
        "Cannot authenticate to account root with given credentials"
    )


def test_missing_token_is_401_cannot_authenticate(client: FlaskClient) -> None:
    """A deliberate difference from Rucio's 400 ValueError (docs/rucio-compatibility.md)."""
    response = client.get("/rses/")
    assert response.status_code == 401
    assert response.get_json(force=True)["ExceptionClass"] == "CannotAuthenticate"


def test_unknown_token_is_401(client: FlaskClient) -> None:
    response = client.get("/rses/", headers={"X-Rucio-Auth-Token": "root-forged"})
    assert response.status_code == 401
    assert response.headers["ExceptionClass"] == "CannotAuthenticate"


def test_validate_answers_a_python_repr(client: FlaskClient, root_headers: dict[str, str]) -> None:
    response = client.get("/auth/validate", headers=root_headers)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert text.startswith("{'account': 'root', 'identity': 'root', 'lifetime': datetime.datetime(")


def test_error_format_body_and_headers(client: FlaskClient, root_headers: dict[str, str]) -> None:
    client.post("/accounts/root/scopes/sc", headers=root_headers)
    response = client.get("/dids/sc/missing", headers=root_headers)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/octet-stream"
    body = json.loads(response.data)
    assert body == {
        "ExceptionClass": "DataIdentifierNotFound",
        "ExceptionMessage": "Data identifier 'sc:missing' not found",
    }
    assert response.headers["ExceptionClass"] == "DataIdentifierNotFound"
    assert response.headers["ExceptionMessage"] == body["ExceptionMessage"]


def test_header_message_is_one_line_and_cut() -> None:
    message = "line one\nline two " + "x" * 200
    cut = header_message(message)
    assert "\n" not in cut
    assert len(cut) == 128 and cut.endswith("...")
    assert header_message("short") == "short"


def test_unhandled_errors_are_500_without_trace(
    app: Flask, root_headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom", headers=root_headers)
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "secret internals" not in body and "Traceback" not in body
    assert json.loads(body)["ExceptionClass"] == "RucioException"
    assert "request id" in json.loads(body)["ExceptionMessage"]
    assert "secret internals" in caplog.text


def test_known_errors_keep_their_status(app: Flask, root_headers: dict[str, str]) -> None:
    @app.get("/missing")
    def missing() -> None:
        raise DataIdentifierNotFound("x")

    assert app.test_client().get("/missing", headers=root_headers).status_code == 404


def test_bad_json_body_is_400_not_echoed(client: FlaskClient, root_headers: dict[str, str]) -> None:
    junk = "{not json " + "A" * 5000
    response = client.post("/rses/SITE", data=junk, headers=root_headers)
    assert response.status_code == 400
    assert response.headers["ExceptionClass"] == "ValueError"
    assert "AAAA" not in response.get_data(as_text=True)


def test_body_parsed_without_content_type(client: FlaskClient, root_headers: dict[str, str]) -> None:
    response = client.post("/rses/SITE", data='{"deterministic": false}', headers=root_headers)
    assert response.status_code == 201
    assert response.get_data(as_text=True) == "Created"
    assert client.get("/rses/SITE", headers=root_headers).get_json()["deterministic"] is False


def test_missing_rule_account_is_key_error(client: FlaskClient, root_headers: dict[str, str]) -> None:
    response = client.post(
        "/rules/", data='{"dids": [], "copies": 1, "rse_expression": "X"}', headers=root_headers
    )
    assert response.status_code == 400
    assert response.headers["ExceptionClass"] == "KeyError"


def test_stream_content_type_lines_and_dates(client: FlaskClient, root_headers: dict[str, str]) -> None:
    for name in ("SITE-A", "SITE-B"):
        client.post(f"/rses/{name}", headers=root_headers)
    response = client.get("/rses/", headers=root_headers)
    assert response.headers["Content-Type"] == "application/x-json-stream"
    lines = response.get_data(as_text=True).splitlines()
    rows = [json.loads(line) for line in lines]
    assert [row["rse"] for row in rows] == ["SITE-A", "SITE-B"]
    assert RFC1123.match(rows[0]["created_at"])


def test_empty_stream_is_empty_body(client: FlaskClient, root_headers: dict[str, str]) -> None:
    response = client.get("/rses/", headers=root_headers)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-json-stream"
    assert response.data == b""


def test_json_content_type_has_no_charset(client: FlaskClient, root_headers: dict[str, str]) -> None:
    response = client.get("/scopes/", headers=root_headers)
    assert response.headers["Content-Type"] == "application/json"
    assert response.get_json() == []


def test_unsupported_accept_is_406(client: FlaskClient, root_headers: dict[str, str]) -> None:
    response = client.get("/rses/", headers={**root_headers, "Accept": "application/json"})
    assert response.status_code == 406
    assert response.get_json(force=True) == {
        "ExceptionClass": "UnsupportedRequestedContentType",
        "ExceptionMessage": "The requested content type application/json is not supported. "
        "Use ['application/x-json-stream'].",
    }
    assert client.get("/rses/", headers={**root_headers, "Accept": "*/*"}).status_code == 200


def test_whoami_is_a_relative_303(client: FlaskClient, root_headers: dict[str, str]) -> None:
    response = client.get("/accounts/whoami", headers=root_headers)
    assert response.status_code == 303
    assert response.headers["Location"] == "root"
    account = client.get("/accounts/root", headers=root_headers).get_json()
    assert account["account"] == "root" and re.match(
        r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$", account["created_at"]
    )


def test_slash_behaviour(client: FlaskClient, root_headers: dict[str, str]) -> None:
    missing_slash = client.get("/rses", headers=root_headers)
    assert missing_slash.status_code == 308
    assert missing_slash.headers["Location"].endswith("/rses/")
    client.post("/rses/SITE", headers=root_headers)
    assert client.get("/rses/SITE/", headers=root_headers).status_code == 404


def test_unknown_route_and_method_use_the_error_format(
    client: FlaskClient, root_headers: dict[str, str]
) -> None:
    unknown = client.get("/no/such/thing", headers=root_headers)
    assert unknown.status_code == 404
    assert unknown.headers["ExceptionClass"] == "NotFound"
    wrong_method = client.patch("/rses/", headers=root_headers)
    assert wrong_method.status_code == 405
    assert "GET" in wrong_method.headers["Allow"]


def test_access_denied_is_401(client: FlaskClient, session: Session) -> None:
    headers = make_account(session, "probe")
    response = client.post("/rses/SITE", headers=headers)
    assert response.status_code == 401
    assert response.headers["ExceptionClass"] == "AccessDenied"


def test_metrics_and_openapi(client: FlaskClient, root_headers: dict[str, str]) -> None:
    client.get("/rses/", headers=root_headers)
    metrics = client.get("/metrics", headers=root_headers).get_data(as_text=True)
    assert 'datamgmt_api_requests_total{endpoint="/rses/",method="GET",status="200"} 1.0' in metrics
    assert "datamgmt_api_request_duration_seconds_bucket" in metrics
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    rules = {rule.rule for rule in client.application.url_map.iter_rules()}
    assert len(document["paths"]) == len(rules)
    assert "requestBody" in document["paths"]["/rules/"]["post"]
    assert document["paths"]["/ping"]["get"]["security"] == []


def test_metric_labels_stay_bounded(client: FlaskClient, root_headers: dict[str, str]) -> None:
    """A client choosing the method token must not choose a metric label (memory per series)."""
    for token in ("BREW", "X-ANY-TOKEN-1", "X-ANY-TOKEN-2"):
        assert client.open("/rses/", method=token, headers=root_headers).status_code == 405
    client.get("/rses/", headers=root_headers)
    client.get("/rses/", headers=root_headers)
    metrics = client.get("/metrics", headers=root_headers).get_data(as_text=True)
    assert 'datamgmt_api_requests_total{endpoint="unmatched",method="OTHER",status="405"} 3.0' in metrics
    assert 'datamgmt_api_requests_total{endpoint="/rses/",method="GET",status="200"} 2.0' in metrics
    assert "BREW" not in metrics
