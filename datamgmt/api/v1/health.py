"""``GET /health``: are the daemons alive?  From their heartbeats, without authentication.

Public on purpose, like ``/ping``: load balancers and process supervisors probe it without a
token.  It shows only daemon names, their newest heartbeat and how many workers beat within
``[daemons] heartbeat_timeout``; no host names, process ids or catalogue content.

The daemons it expects are ``[api] health_daemons`` (comma-separated; ``datamgmt-server
--embedded`` sets it to the daemons it supervises).  Empty: every daemon that has a
heartbeat row.  200 when each expected daemon has a fresh heartbeat, 503 otherwise, so a
probe needs only the status; the body says which daemon is late.
"""

from __future__ import annotations

from flask import Blueprint, Response

from datamgmt import __version__
from datamgmt.api.auth import public
from datamgmt.api.context import unit_of_work
from datamgmt.api.openapi import doc
from datamgmt.api.streaming import json_response
from datamgmt.config import get_config
from datamgmt.core import heartbeat

bp = Blueprint("health", __name__)


def expected_daemons() -> list[str]:
    """``[api] health_daemons`` as a list (empty: whatever daemons have heartbeats)."""
    raw = get_config().get("api", "health_daemons")
    return [name.strip() for name in raw.split(",") if name.strip()]


@bp.get("/health")
@public
@doc("Liveness of the daemons from their heartbeats: 200 when all are alive, 503 otherwise")
def health() -> Response:
    timeout = get_config().get_int("daemons", "heartbeat_timeout")
    with unit_of_work() as session:
        daemons = heartbeat.liveness(session, expected_daemons(), timeout)
    alive = all(d.alive for d in daemons.values())
    body = {
        "status": "ok" if alive else "unhealthy",
        "version": __version__,
        "heartbeat_timeout": timeout,
        "daemons": {
            name: {
                "alive": d.alive,
                "live_workers": d.live_workers,
                "last_beat": d.last_beat.isoformat() + "Z" if d.last_beat else None,
            }
            for name, d in daemons.items()
        },
    }
    return json_response(body, status=200 if alive else 503)
