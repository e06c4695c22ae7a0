"""A Handle Server REST API double: ``/api/handles/<prefix>/<suffix>`` with GET, PUT and DELETE.

Follows the public API documentation (DataCite REST API, Handle.net HS_ADMIN REST): JSON bodies with ``responseCode``; 404/100 unknown
handle, 409/101 existing handle with ``overwrite=false``, 400/202 invalid values (no
HS_ADMIN on creation, duplicate or malformed indexes), 401/402 missing or wrong Basic
credentials, 403/400 a user outside its prefix, 404/301 a prefix this server does not
serve; ``index=`` limits PUT and DELETE to those values and GET filters by ``index``/``type``.
Handle names are case-insensitive.  Reads need no authentication.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from flask import Flask, Response, jsonify, request


class HandleStore:
    """The handles the double holds, visible to tests for assertions."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def get(self, handle: str) -> dict[str, Any] | None:
        return self.records.get(handle.upper())


def _answer(status: int, code: int, handle: str, **extra: Any) -> Response:
    response = jsonify({"responseCode": code, "handle": handle, **extra})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="handle"'
    return response


def _valid_values(values: Any) -> bool:
    if not isinstance(values, list):
        return False
    indexes = [value.get("index") if isinstance(value, dict) else None for value in values]
    return all(
        isinstance(index, int)
        and index > 0
        and isinstance(value.get("type"), str)
        and isinstance(value.get("data"), dict)
        for index, value in zip(indexes, values, strict=True)
    ) and len(set(indexes)) == len(indexes)


def make_handle_app(prefixes: set[str], users: dict[str, str], store: HandleStore | None = None) -> Flask:
    """The double for ``prefixes``; ``users`` maps ``<index>:<admin handle>`` to its password.

    A user may write under the prefix of its admin handle (``300:21.T1/USER01`` → ``21.T1``)
    or under ``<p>`` when its admin handle is ``0.NA/<p>``.
    """
    store = store or HandleStore()
    app = Flask("handle-double")
    app.config["store"] = store

    def authorize(prefix: str, handle: str) -> Response | None:
        auth = request.authorization
        username = unquote(auth.username or "") if auth and auth.type == "basic" else ""
        if not username or users.get(username) != (auth.password if auth else None):
            return _answer(401, 402, handle, message="Authentication needed")
        admin = username.partition(":")[2]
        allowed = admin.split("/", 1)[1] if admin.upper().startswith("0.NA/") else admin.split("/", 1)[0]
        if allowed.upper() != prefix.upper():
            return _answer(403, 400, handle, message="Insufficient permissions")
        return None

    @app.route("/api/handles/<prefix>/<path:suffix>", methods=["GET", "PUT", "DELETE"])
    def handle_record(prefix: str, suffix: str) -> Response:
        handle = f"{prefix}/{suffix}"
        if prefix.upper() not in {p.upper() for p in prefixes}:
            return _answer(404, 301, handle, message="Server not responsible for handle")
        record = store.get(handle)
        indexes = [int(index) for index in request.args.getlist("index")]
        if request.method == "GET":
            if record is None:
                return _answer(404, 100, handle, message="Handle not found")
            types = request.args.getlist("type")
            values = [
                value
                for value in record["values"]
                if (not indexes or value["index"] in indexes) and (not types or value["type"] in types)
            ]
            if not values and (indexes or types):
                return _answer(200, 200, record["handle"], values=[])
            return _answer(200, 1, record["handle"], values=values)
        denied = authorize(prefix, handle)
        if denied is not None:
            return denied
        if request.method == "DELETE":
            if record is None:
                return _answer(404, 100, handle, message="Handle not found")
            if indexes:
                record["values"] = [value for value in record["values"] if value["index"] not in indexes]
            else:
                del store.records[handle.upper()]
            return _answer(200, 1, record["handle"])
        body = request.get_json(silent=True)
        values = body.get("values") if isinstance(body, dict) else body
        if not _valid_values(values):
            return _answer(400, 202, handle, message="Invalid value")
        if indexes:
            if record is None:
                return _answer(404, 100, handle, message="Handle not found")
            kept = [value for value in record["values"] if value["index"] not in indexes]
            record["values"] = sorted(
                kept + [value for value in values if value["index"] in indexes], key=lambda v: v["index"]
            )
            return _answer(200, 1, record["handle"])
        if record is not None and request.args.get("overwrite", "true").lower() == "false":
            return _answer(409, 101, record["handle"], message="Handle already exists")
        if not any(value["type"] == "HS_ADMIN" for value in values):
            return _answer(400, 202, handle, message="An HS_ADMIN value is required")
        created = record is None
        store.records[handle.upper()] = {"handle": handle, "values": sorted(values, key=lambda v: v["index"])}
        return _answer(201 if created else 200, 1, handle)

    return app
