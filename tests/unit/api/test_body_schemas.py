"""Every request body is validated against the schema ``/openapi.json`` publishes for its route.

The walk sends each route that declares a body one with a property of the wrong type (a long
string where the schema wants anything else, a number where it wants a string) and expects
Rucio's 400 ``InvalidObject`` (or the class the schema declares with ``x-rucio-error``) naming the property, with a message that does not echo the input.
A view that reads a body must declare its schema, so none escapes the walk.
"""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import fastjsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient

from datamgmt.api.body_schema import check_body
from datamgmt.exceptions import InvalidObject, MissingParameter

#: Path variables filled for the walk (any other gets ``x<name>``).
_SAMPLES = {
    "scope": "user.root",
    "name": "file.1",
    "account": "root",
    "rse": "MOCK",
    "rule_id": "0" * 32,
    "port": "1094",
}
_BODY_READERS = re.compile(r"\b(json_object|json_body|dict_list)\(")
LONG = "A" * 5000


def _routes_with_bodies(app: Flask) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for rule in app.url_map.iter_rules():
        schema = getattr(app.view_functions[rule.endpoint], "openapi", {}).get("body")
        if schema is None:
            continue
        url = re.sub(r"<(?:[a-z]+:)?(\w+)>", lambda m: _SAMPLES.get(m.group(1), "x" + m.group(1)), rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS", "GET"}):
            found.append((method, url, schema))
    return found


def _wrong(schema: dict[str, Any]) -> Any:
    """A value of a type ``schema`` refuses (a long string, unless strings are what it wants)."""
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else (kinds or [])
    if "string" in kinds:
        return 12345 if "integer" not in kinds and "number" not in kinds else [LONG]
    return LONG


_VALID = {"string": "x", "integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}


def _valid(schema: dict[str, Any]) -> Any:
    kinds = schema.get("type")
    kind = kinds[0] if isinstance(kinds, list) else kinds
    return schema["enum"][0] if "enum" in schema else _VALID.get(kind, "x")


def _wrong_body(schema: dict[str, Any]) -> tuple[Any, str]:
    """A body breaking ``schema`` in one property's type, and where the error message must point."""
    if schema.get("type") == "array":
        item = schema.get("items", {})
        body, where = _wrong_body(item) if item.get("type") == "object" else (_wrong(item), "[0]")
        return [body], where
    properties = schema.get("properties") or {}
    typed = [(name, sub) for name, sub in properties.items() if sub.get("type")]
    if not typed:  # any object will do: send something else
        return [LONG], "Problem validating"
    name, sub = typed[0]
    body = {required: _valid(properties.get(required, {})) for required in schema.get("required", ())}
    body[name] = _wrong(sub)
    return body, name


def _declared(schema: dict[str, Any], where: str) -> str:
    """Rucio's class for a violation there: the property's ``x-rucio-error``, else InvalidObject."""
    if schema.get("type") == "array":
        schema = schema.get("items", {})
    return (schema.get("properties") or {}).get(where, {}).get("x-rucio-error", "InvalidObject")


def test_routes_with_bodies_are_walked(app: Flask) -> None:
    assert len(_routes_with_bodies(app)) >= 60


@pytest.mark.parametrize("index", range(90))
def test_a_wrong_type_is_invalid_object(
    app: Flask, client: FlaskClient, root_headers: dict[str, str], index: int
) -> None:
    routes = sorted(_routes_with_bodies(app), key=lambda route: route[:2])
    if index >= len(routes):
        pytest.skip(f"{len(routes)} routes with bodies")
    method, url, schema = routes[index]
    body, where = _wrong_body(schema)
    expected = _declared(schema, where)
    response = client.open(url, method=method, json=body, headers=root_headers)
    message = response.headers.get("ExceptionMessage", "")
    assert (response.status_code, response.headers.get("ExceptionClass")) == (400, expected), (
        f"{method} {url} {where}: {response.status_code} {response.get_data(as_text=True)[:300]}"
    )
    assert where in json.loads(response.get_data())["ExceptionMessage"], message
    assert LONG[:100] not in response.get_data(as_text=True), "the input is not echoed"


def test_every_view_that_reads_a_body_declares_its_schema(app: Flask) -> None:
    undeclared = []
    for endpoint, view in app.view_functions.items():
        if _BODY_READERS.search(inspect.getsource(inspect.unwrap(view))) and not getattr(
            view, "openapi", {}
        ).get("body"):
            undeclared.append(endpoint)
    assert not undeclared, f"views reading a body without a schema in their @doc: {sorted(undeclared)}"


SCHEMA = {
    "type": "object",
    "required": ["rse"],
    "properties": {
        "rse": {"type": "string"},
        "copies": {"type": "integer", "minimum": 1},
        "dids": {
            "type": "array",
            "items": {"type": "object", "required": ["scope"], "properties": {"scope": {"type": "string"}}},
        },
    },
}


@pytest.mark.parametrize(
    ("body", "error", "words"),
    [
        ({}, MissingParameter, "'rse' not defined"),
        ({"rse": 1}, InvalidObject, "rse: must be of type string, not '1'"),
        ({"rse": "X", "copies": 0}, InvalidObject, "copies: must be >= 1"),
        ({"rse": "X", "dids": [{"scope": 3}]}, InvalidObject, "dids[0].scope"),
        ({"rse": "X", "dids": [{}]}, InvalidObject, "dids[0]: it lacks a required key"),
        ([1, 2], InvalidObject, "the body: must be of type object"),
    ],
)
def test_messages(body: Any, error: type[Exception], words: str) -> None:
    with pytest.raises(error) as raised:
        check_body(SCHEMA, body)
    assert words in str(raised.value.message)  # type: ignore[attr-defined]


def test_optional_properties_may_be_null_as_the_stock_client_sends_them() -> None:
    check_body(SCHEMA, {"rse": "X", "copies": None, "dids": None})
    with pytest.raises(InvalidObject):
        check_body(SCHEMA, {"rse": None})


def test_a_schema_names_the_class_rucio_answers_with() -> None:
    schema = {
        "type": "object",
        "properties": {
            "key_type": {"type": "string", "enum": ["FILE"], "x-rucio-error": "UnsupportedKeyType"}
        },
    }
    with pytest.raises(InvalidObject) as raised:
        check_body(schema, {"key_type": "FOLDER"})
    assert (raised.value.status, raised.value.error_class) == (400, "UnsupportedKeyType")


def _mutations(value: Any) -> list[Any]:
    """``value`` with one part replaced by a value of another JSON type, for every part."""
    others: list[Any] = [None, True, 0, 1.5, -1, "", LONG, [], [1], {}, {"k": "v"}]
    found = [other for other in others if other != value]
    if isinstance(value, dict):
        for name, sub in value.items():
            found += [{**value, name: changed} for changed in _mutations(sub)]
        found.append({**value, "unexpected-key": 1})
        found += [{k: v for k, v in value.items() if k != name} for name in value]
    elif isinstance(value, list) and value:
        found += [[changed, *value[1:]] for changed in _mutations(value[0])]
    return found


def _fast_check_is_as_strict(authority: Any, fast: Any) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from hypothesis_jsonschema import from_schema

    @settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        body = data.draw(from_schema(authority.schema))
        fast(body)  # a valid body passes the fast check: bulk calls never pay for jsonschema
        for changed in _mutations(body):
            if next(authority.iter_errors(changed), None) is not None:
                with pytest.raises(fastjsonschema.JsonSchemaException):
                    fast(changed)

    check()


def test_the_fast_check_never_accepts_what_jsonschema_refuses(app: Flask) -> None:
    """Valid bodies take the fast check alone (api/body_schema.py), so it must be as strict as
    jsonschema: every route's schema, on valid bodies of each and on every one-part change of them."""
    from datamgmt.api.body_schema import _compiled

    schemas = {id(schema): schema for _method, _url, schema in _routes_with_bodies(app)}
    assert len(schemas) >= 40
    for schema in schemas.values():
        _, authority, fast = _compiled(schema)
        _fast_check_is_as_strict(authority, fast)
