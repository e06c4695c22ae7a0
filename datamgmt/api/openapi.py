"""The OpenAPI 3 document, generated from the registered routes.

Each view may carry a small annotation (:func:`doc`): a summary, the JSON schema of
its body and its query parameters.  Everything else (paths, methods, path
parameters, which endpoints need a token) comes from the URL map itself, so the
document cannot drift from the routes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response

from datamgmt import __version__
from datamgmt.api.auth import public
from datamgmt.api.streaming import dumps

View = TypeVar("View", bound=Callable[..., Any])
_PARAMETER = re.compile(r"<(?:(?P<converter>[a-z]+):)?(?P<name>\w+)>")
_STRING = {"type": "string"}
_OBJECT = {"type": "object"}


def doc(
    summary: str, body: dict[str, Any] | None = None, query: dict[str, dict[str, Any]] | None = None
) -> Callable[[View], View]:
    """Annotate a view for the OpenAPI document."""

    def mark(view: View) -> View:
        view.openapi = {"summary": summary, "body": body, "query": query or {}}  # type: ignore[attr-defined]  # the view function carries its own description
        return view

    return mark


def schema_object(required: list[str] | None = None, **properties: dict[str, Any]) -> dict[str, Any]:
    """A JSON-object schema, for annotations."""
    result: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        result["required"] = required
    return result


def _operation(
    view: Callable[..., Any], method: str, path: str, path_parameters: list[str]
) -> dict[str, Any]:
    notes = getattr(view, "openapi", {})
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _STRING} for name in path_parameters
    ]
    parameters += [
        {"name": name, "in": "query", "schema": schema} for name, schema in notes.get("query", {}).items()
    ]
    operation: dict[str, Any] = {
        "summary": notes.get("summary") or (view.__doc__ or view.__name__).strip().splitlines()[0],
        "operationId": method + re.sub(r"\W+", "_", path).rstrip("_"),
        "parameters": parameters,
        "responses": {"default": {"description": "Rucio-style result or error"}},
    }
    if notes.get("body") is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": notes["body"]}},
        }
    if getattr(view, "public", False):
        operation["security"] = []
    return operation


def build_document(app: Flask) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        path = _PARAMETER.sub(lambda m: "{" + m.group("name") + "}", rule.rule)
        names = [m.group("name") for m in _PARAMETER.finditer(rule.rule)]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(view, method.lower(), path, names)
    return {
        "openapi": "3.0.3",
        "info": {"title": "datamgmt REST API (Rucio dialect)", "version": __version__},
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Rucio-Auth-Token"}}
        },
        "security": [{"token": []}],
        "paths": paths,
    }


def install_openapi(app: Flask) -> None:
    """Serve ``/openapi.json``; call after every blueprint is registered."""

    @public
    def openapi() -> Response:
        return Response(dumps(build_document(app)), content_type="application/json")

    app.add_url_rule("/openapi.json", "openapi", openapi, methods=["GET"])
