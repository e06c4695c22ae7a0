"""``GET /status``: the operator's view at a glance, for ``datamgmt-admin status`` and for tools.

Unlike ``/health`` (public, daemon liveness only) this names hosts, rules and accounts, so it
is for admins.  Not a Rucio route.
"""

from __future__ import annotations

from flask import Blueprint, Response

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.openapi import doc
from datamgmt.api.streaming import json_response
from datamgmt.config import get_config
from datamgmt.core import status as report

bp = Blueprint("status", __name__)


@bp.get("/status")
@doc("Daemons alive, queue depths, rules by state, stuck rules and their causes, RSE usage against limits")
def status() -> Response:
    with unit_of_work(read_only=True) as session:
        authorize(session, "get_status")
        return json_response(report.status(session, get_config().get_int("daemons", "heartbeat_timeout")))
