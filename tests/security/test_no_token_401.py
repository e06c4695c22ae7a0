"""Every protected route answers 401 ``CannotAuthenticate`` without a valid token, before any lookup.

A route that answered 404 for a missing object to an anonymous caller would tell a probe
which scopes, accounts and RSEs exist; the route walk below covers every rule the app has.
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

_DUMMIES = {
    "integer": "1",
    "float": "1.0",
    "path": "nosuch/thing",
    "uuid": "00000000-0000-0000-0000-000000000000",
}


def _protected(app: Flask) -> list[tuple[Rule, str]]:
    """Every (rule, method) whose view needs an identity."""
    found = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if getattr(view, "public", False) or rule.endpoint == "static":
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule, method))
    return found


def _url(rule: Rule) -> str:
    values = {}
    for name, converter in rule._converters.items():  # noqa: SLF001 - the only way to learn each argument's type
        kind = type(converter).__name__.replace("Converter", "").lower()
        values[name] = _DUMMIES.get(kind, "nosuch")
    return rule.build(values, append_unknown=False)[1]


@pytest.mark.parametrize("token", [None, "root-forged-token", "eyJhbGciOi.eyJzdWIi.c2ln"])
def test_every_protected_route_answers_401(app: Flask, client: FlaskClient, token: str | None) -> None:
    headers = {"X-Rucio-Auth-Token": token} if token else {}
    wrong = []
    routes = _protected(app)
    assert len(routes) > 50, "the walk must see the whole API"
    for rule, method in routes:
        response = client.open(_url(rule), method=method, headers=headers, json={})
        if response.status_code != 401 or response.headers.get("ExceptionClass") != "CannotAuthenticate":
            wrong.append(
                f"{method} {rule.rule}: {response.status_code} {response.headers.get('ExceptionClass')}"
            )
    assert not wrong, "\n".join(wrong)


def test_missing_token_says_how_to_authenticate(client: FlaskClient) -> None:
    response = client.get("/dids/nosuch/nosuch")
    assert response.status_code == 401
    body = response.get_json(force=True)
    assert body["ExceptionClass"] == "CannotAuthenticate"
    assert "token" in body["ExceptionMessage"].lower()
