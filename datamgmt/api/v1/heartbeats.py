"""``/heartbeats``: the daemons' liveness records, listed and sent as Rucio's API does (admins only).

Rucio keys a heartbeat by executable, host, process and thread; ours by daemon and worker, so a
heartbeat sent here belongs to worker ``hostname:pid``. ``older_than`` (seconds) first forgets
that daemon's workers silent for longer, as Rucio's does.
"""

from __future__ import annotations

from flask import Blueprint, Response

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.openapi import doc, schema_object
from datamgmt.api.params import json_object, key
from datamgmt.api.streaming import json_response
from datamgmt.core import heartbeat
from datamgmt.exceptions import InputValidationError

bp = Blueprint("heartbeats", __name__, url_prefix="/heartbeats")

_BEAT_BODY = schema_object(
    ["executable", "hostname", "pid"],
    executable={"type": "string"},
    hostname={"type": "string"},
    pid={"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
    older_than={"type": ["integer", "null"], "minimum": 0, "maximum": 2**31 - 1},
    payload={},
)


@bp.get("")
@doc("Every daemon worker's last heartbeat")
def list_heartbeats() -> Response:
    with unit_of_work(read_only=True) as session:
        authorize(session, "list_heartbeats")
        return json_response(heartbeat.list_heartbeats(session))


@bp.post("")
@doc("Record a heartbeat of an external daemon", body=_BEAT_BODY)
def send_heartbeat() -> Response:
    body = json_object()
    daemon, hostname = key(body, "executable", str)[:64], key(body, "hostname", str)[:255]
    pid, older_than = key(body, "pid", int), key(body, "older_than", int, None)
    if not daemon or not hostname:
        raise InputValidationError("executable and hostname must not be empty")
    if not 0 <= pid < 2**31 or not 0 <= (older_than or 0) < 2**31:
        raise InputValidationError("pid and older_than must be non-negative 32-bit integers")
    with unit_of_work() as session:
        authorize(session, "send_heartbeats")
        if older_than is not None:
            heartbeat.expire(session, older_than, daemon)
        heartbeat.beat(session, daemon, f"{hostname}:{pid}"[-128:], hostname, pid)
    return Response("OK", status=200, content_type="text/html; charset=utf-8")
