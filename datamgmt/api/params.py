"""Reading request input the way Rucio's client sends it.

Bodies are JSON whatever the Content-Type (the stock client sends none); query
booleans are Python-style (``True``/``False``).  Every helper checks the type it
returns, so a malformed request is a 400 and never reaches core as the wrong type.
"""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, request

from datamgmt.api.body_schema import check_body
from datamgmt.core.validation import shown
from datamgmt.exceptions import InputValidationError, MalformedRequest, MissingParameter

_MISSING = object()


def json_body(default: Any = _MISSING) -> Any:
    """The request body parsed as JSON and checked against its route's schema; an empty body
    gives ``default`` (or an error)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if default is _MISSING:
            raise MalformedRequest("cannot decode json parameter dictionary: the body is empty")
        return default
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # deep nesting raises RecursionError
        raise MalformedRequest("cannot decode json parameter dictionary") from exc
    schema = body_schema()
    if schema is not None:
        check_body(schema, body)
    return body


def body_schema() -> dict[str, Any] | None:
    """The JSON schema this request's view declares for its body (see api/openapi.py's ``doc``)."""
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "openapi", {}).get("body")


def json_object(required: bool = True) -> dict[str, Any]:
    """The body as a JSON object; without ``required`` an empty body is ``{}``."""
    body = json_body() if required else json_body({})
    if not isinstance(body, dict):
        raise MalformedRequest("the body must be a JSON object")
    return body


def key(
    body: dict[str, Any], name: str, kind: type | tuple[type, ...] | None = None, default: Any = _MISSING
) -> Any:
    """``body[name]`` checked against ``kind``; a missing key without default is Rucio's KeyError."""
    if name not in body:
        if default is _MISSING:
            raise MissingParameter(f"'{name}' not defined")
        return default
    value = body[name]
    if kind is not None and value is not None:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int to Python, never to a JSON schema.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise InputValidationError(f"'{name}' has the wrong type: {shown(value)}")
    return value


def dict_list(body: dict[str, Any], name: str, default: Any = _MISSING) -> list[dict[str, Any]]:
    """A list of JSON objects, such as ``dids`` or ``files``."""
    value = key(body, name, list, default)
    if value is None:
        value = [] if default is _MISSING else default
    if not all(isinstance(item, dict) for item in value):
        raise InputValidationError(f"'{name}' must be a list of objects")
    objects: list[dict[str, Any]] = value
    return objects


def query_bool(name: str, default: bool = False) -> bool:
    raw = request.args.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", "none", ""):
        return False
    raise InputValidationError(f"query parameter {name} must be True or False, not {shown(raw)}")


def query_int(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise InputValidationError(f"query parameter {name} must be an integer, not {shown(raw)}") from exc
    if not -(2**63) <= value < 2**63:  # what SQL's BIGINT holds; beyond it the database driver fails
        raise InputValidationError(f"query parameter {name} is out of range: {shown(raw)}")
    return value
