"""Publishing over REST: PID landing pages, publish/unpublish of DIDs, and PID service admin.

``/pid/<pid>`` is public (PIDs resolve for anyone); the landing page is HTML unless the
client asks for ``application/json``, and a withdrawn share answers 410 with its
tombstone.  Publishing mints a PID remotely before our transaction commits; when the
commit then fails, the fresh PID is withdrawn again (see ``datamgmt.core.pid``).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, request

from datamgmt.api.auth import public
from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.landing import LANDING_CSP, render_landing
from datamgmt.api.openapi import doc, schema_object
from datamgmt.api.params import json_object, key
from datamgmt.api.streaming import JSON, done, dumps, json_response
from datamgmt.config import get_config
from datamgmt.core import pid
from datamgmt.exceptions import ServiceUnavailable

log = logging.getLogger(__name__)
bp = Blueprint("publishing", __name__)

_SERVICE_BODY = schema_object(
    ["name", "type", "prefix"],
    name={"type": "string"},
    type={"type": "string", "enum": ["local", "handle", "datacite"]},
    prefix={"type": "string"},
    endpoint={"type": "string"},
    username={"type": "string"},
    secret={"type": "string"},
    options={"type": "object"},
    is_default={"type": "boolean"},
)


def base_url() -> str:
    """Where landing pages live: ``[api] base_url``, required before anything is published.

    Never the URL this request came to: its Host header is the client's choice, and a PID
    minted with it would point wherever that client said, for good.
    """
    configured = get_config().get("api", "base_url")
    if not configured:
        raise ServiceUnavailable(
            "Publishing needs [api] base_url: landing-page URLs never come from the Host header"
        )
    return configured.rstrip("/")


# --- landing pages ---------------------------------------------------------------------------
@bp.get("/pid/<path:pid_value>")
@public
@doc("Landing page of a PID: HTML, or JSON for Accept: application/json; 410 once withdrawn")
def landing_page(pid_value: str) -> Response:
    with unit_of_work() as session:
        share = pid.resolve(session, pid_value)
    status = 410 if share["withdrawn"] else 200
    if request.accept_mimetypes.best_match(["text/html", JSON]) == JSON:
        return Response(dumps(share), status=status, content_type=JSON)
    page = Response(render_landing(share), status=status, content_type="text/html; charset=utf-8")
    page.headers["Content-Security-Policy"] = LANDING_CSP
    return page


# --- publishing ------------------------------------------------------------------------------
@bp.post("/dids/<scope>/<path:name>/publish")
@doc("Publish a dataset or container under a new PID", body=schema_object([], pid_service={"type": "string"}))
def publish(scope: str, name: str) -> Response:
    service = key(json_object(required=False), "pid_service", str, None)
    return json_response(publish_share(scope, name, service), status=201)


def publish_share(scope: str, name: str, service: str | None = None) -> dict[str, Any]:
    """Publish as the issuer, in a unit of work of its own, withdrawing the fresh PID again when
    the commit fails (shared by REST and the web pages, so both keep this compensation)."""
    url = base_url()
    share: dict[str, Any] | None = None
    try:
        with unit_of_work(read_only=False) as session:
            account = authorize(session, "publish_did", scope=scope)
            share = pid.publish(session, scope, name, account, url, service)
    except Exception:
        if share is not None:
            withdraw_orphan(share, url)
        raise
    return share


def withdraw_orphan(share: dict[str, Any], url: str) -> None:
    """The commit failed after the PID was minted (or re-activated): withdraw it again."""
    try:
        with unit_of_work() as session:
            pid.withdraw_orphan(session, share["pid_service"], share["pid"], url)
    except Exception:
        log.exception("could not withdraw the orphaned PID %s at %s", share["pid"], share["pid_service"])


@bp.put("/dids/<scope>/<path:name>/publish")
@doc("Send the DID's current metadata to its PID service")
def update_share(scope: str, name: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "publish_did", scope=scope)
        return json_response(pid.update_share(session, scope, name, base_url()))


@bp.get("/dids/<scope>/<path:name>/publish")
@doc("The share of a DID (published or withdrawn)")
def get_share(scope: str, name: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        return json_response(pid.get_share(session, scope, name))


@bp.delete("/dids/<scope>/<path:name>/publish")
@doc("Withdraw a share; its PID keeps resolving to a tombstone")
def unpublish(scope: str, name: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "unpublish_did", scope=scope)
        return json_response(pid.unpublish(session, scope, name, base_url()))


# --- PID services ----------------------------------------------------------------------------
@bp.get("/pidservices/")
@doc("The configured PID services (secrets are never shown)")
def list_pid_services() -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        return json_response(pid.list_pid_services(session))


@bp.post("/pidservices/")
@doc("Configure a PID service", body=_SERVICE_BODY)
def add_pid_service() -> Response:
    body = json_object()
    arguments = {
        "name": key(body, "name", str),
        "service_type": key(body, "type", str),
        "prefix": key(body, "prefix", str),
        "endpoint": key(body, "endpoint", str, None),
        "username": key(body, "username", str, None),
        "secret": key(body, "secret", str, None),
        "options": key(body, "options", dict, None),
        "is_default": key(body, "is_default", bool, False),
    }
    with unit_of_work() as session:
        authorize(session, "add_pid_service")
        pid.add_pid_service(session, **arguments)
        return json_response(pid.get_pid_service(session, arguments["name"]), status=201)


@bp.get("/pidservices/<name>")
@doc("One PID service")
def get_pid_service(name: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        return json_response(pid.get_pid_service(session, name))


@bp.delete("/pidservices/<name>")
@doc("Remove a PID service that holds no share's PID")
def delete_pid_service(name: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "del_pid_service")
        pid.delete_pid_service(session, name)
    return done()
