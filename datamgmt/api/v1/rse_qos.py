"""``/rses/<rse>/qos_policy``: the QoS policies an RSE offers."""

from __future__ import annotations

from flask import Blueprint, Response

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.openapi import doc
from datamgmt.api.streaming import check_accept, created, done, json_response
from datamgmt.core import rse_qos

bp = Blueprint("rse_qos", __name__, url_prefix="/rses")
JSON = "application/json"


@bp.get("/<rse>/qos_policy")
@doc("The QoS policies of an RSE")
def list_policies(rse: str) -> Response:
    check_accept(JSON)
    with unit_of_work() as session:
        authorize(session, "read")
        return json_response(rse_qos.list_qos_policies(session, rse))


@bp.post("/<rse>/qos_policy/<policy>")
@doc("Add a QoS policy to an RSE (admins)")
def add_policy(rse: str, policy: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "add_qos_policy", rse=rse)
        rse_qos.add_qos_policy(session, rse, policy)
    return created()


@bp.delete("/<rse>/qos_policy/<policy>")
@doc("Remove a QoS policy from an RSE (admins)")
def delete_policy(rse: str, policy: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "delete_qos_policy", rse=rse)
        rse_qos.delete_qos_policy(session, rse, policy)
    return done()
