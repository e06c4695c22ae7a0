"""A DataCite REST API double: ``/dois`` with JSON:API bodies and HTTP Basic auth.

Follows the public API documentation (DataCite REST API, Handle.net HS_ADMIN REST): POST creates (201; ``attributes.doi`` or only
``attributes.prefix``, then a random suffix), PUT updates or creates (200), GET reads
(drafts only for their owner), DELETE removes drafts only (204; else 405).  States move
draft → registered/findable via ``event`` (``publish``, ``register``, ``hide``) and never
back to draft; leaving draft, or updating a non-draft, needs the kernel-4 mandatory
properties (else 422).  A taken DOI on POST is 422 on ``doi``; a foreign prefix is 403;
missing or wrong credentials are 401.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request

_SUFFIX_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_MANAGED = {"doi", "prefix", "suffix", "state", "event"}


@dataclass
class DOIRecord:
    owner: str
    state: str = "draft"
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataCiteStore:
    """The DOIs the double holds (keys lower-case: DOIs are case-insensitive)."""

    dois: dict[str, DOIRecord] = field(default_factory=dict)


def _errors(status: int, *problems: tuple[str, str]) -> Response:
    response = jsonify(
        {"errors": [{"status": str(status), "source": src, "title": title} for src, title in problems]}
    )
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="datacite"'
    return response


def _missing_mandatory(attributes: dict[str, Any]) -> list[tuple[str, str]]:
    checks = {
        "url": bool(attributes.get("url")),
        "creators": any(isinstance(c, dict) and c.get("name") for c in attributes.get("creators") or []),
        "titles": any(isinstance(t, dict) and t.get("title") for t in attributes.get("titles") or []),
        "publisher": bool(attributes.get("publisher")),
        "publicationYear": bool(attributes.get("publicationYear")),
        "types": bool((attributes.get("types") or {}).get("resourceTypeGeneral")),
    }
    return [(name, f"{name} is required") for name, ok in checks.items() if not ok]


def _next_state(state: str, event: str | None) -> str | None:
    """The state after ``event``, or None when the transition is not allowed."""
    if event is None:
        return state
    allowed = {
        ("draft", "publish"): "findable",
        ("registered", "publish"): "findable",
        ("findable", "publish"): "findable",
        ("draft", "register"): "registered",
        ("registered", "register"): "registered",
        ("findable", "hide"): "registered",
    }
    return allowed.get((state, event))


def make_datacite_app(accounts: dict[str, tuple[str, set[str]]], store: DataCiteStore | None = None) -> Flask:
    """The double; ``accounts`` maps a repository id to (password, prefixes it may mint under)."""
    store = store or DataCiteStore()
    app = Flask("datacite-double")
    app.config["store"] = store

    def account() -> str | None:
        auth = request.authorization
        if auth is None or auth.type != "basic" or auth.username not in accounts:
            return None
        return auth.username if accounts[auth.username][0] == auth.password else None

    def document(doi: str, record: DOIRecord) -> dict[str, Any]:
        prefix, _, suffix = doi.partition("/")
        attributes = {
            **record.attributes,
            "doi": doi,
            "prefix": prefix,
            "suffix": suffix,
            "state": record.state,
        }
        return {"data": {"id": doi, "type": "dois", "attributes": attributes}}

    def apply(doi: str, record: DOIRecord, attributes: dict[str, Any]) -> Response | None:
        """Merge attributes and run the event; on refusal nothing changes."""
        event = attributes.get("event")
        state = _next_state(record.state, event)
        if state is None:
            return _errors(422, ("event", f"cannot {event} a DOI in state {record.state}"))
        merged = {**record.attributes, **{k: v for k, v in attributes.items() if k not in _MANAGED}}
        if state != "draft":
            missing = _missing_mandatory(merged)
            if missing:
                return _errors(422, *missing)
        record.state, record.attributes = state, merged
        return None

    def body_attributes() -> dict[str, Any] | None:
        body = request.get_json(silent=True, force=True)
        data = body.get("data") if isinstance(body, dict) else None
        if (
            not isinstance(data, dict)
            or data.get("type") != "dois"
            or not isinstance(data.get("attributes"), dict)
        ):
            return None
        return data["attributes"]

    def check_prefix(who: str, doi: str) -> Response | None:
        if doi.partition("/")[0] not in accounts[who][1]:
            return _errors(403, ("prefix", f"{who} may not manage DOIs under this prefix"))
        return None

    @app.post("/dois")
    def create() -> Response:
        who = account()
        if who is None:
            return _errors(401, ("authorization", "Bad credentials"))
        attributes = body_attributes()
        if attributes is None:
            return _errors(400, ("data", "a JSON:API document of type dois is required"))
        doi = attributes.get("doi") or f"{attributes.get('prefix')}/{_random_suffix()}"
        doi = doi.lower()
        refused = check_prefix(who, doi)
        if refused is not None:
            return refused
        if doi in store.dois:
            return _errors(422, ("doi", "This DOI has already been taken"))
        record = DOIRecord(owner=who)
        refused = apply(doi, record, attributes)
        if refused is not None:
            return refused
        store.dois[doi] = record
        response = jsonify(document(doi, record))
        response.status_code = 201
        return response

    @app.route("/dois/<path:doi>", methods=["GET", "PUT", "DELETE"])
    def one(doi: str) -> Response:
        doi = doi.lower()
        record = store.dois.get(doi)
        who = account()
        if request.method == "GET":
            if record is None or (record.state == "draft" and who != record.owner):
                return _errors(404, ("doi", "The resource you are looking for doesn't exist."))
            return jsonify(document(doi, record))
        if who is None:
            return _errors(401, ("authorization", "Bad credentials"))
        refused = check_prefix(who, doi)
        if refused is not None:
            return refused
        if request.method == "DELETE":
            if record is None:
                return _errors(404, ("doi", "The resource you are looking for doesn't exist."))
            if record.state != "draft":
                return _errors(405, ("state", "Only draft DOIs can be deleted"))
            del store.dois[doi]
            return Response(status=204)
        attributes = body_attributes()
        if attributes is None:
            return _errors(400, ("data", "a JSON:API document of type dois is required"))
        candidate = record or DOIRecord(owner=who)
        refused = apply(doi, candidate, attributes)
        if refused is not None:
            return refused
        store.dois[doi] = candidate
        return jsonify(document(doi, candidate))

    return app


def _random_suffix() -> str:
    """DataCite's generated suffixes look like ``abcd-1234``."""
    pick = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(8))
    return f"{pick[:4]}-{pick[4:]}"
