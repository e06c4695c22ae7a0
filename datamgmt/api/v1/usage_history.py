"""Usage over time and per account: ``/accounts/<a>/usage/history/<rse>``,
``/rses/<rse>/usage/history`` and ``/rses/<rse>/accounts/usage``.

Usage is readable by every account (our documented policy, docs/rucio-compatibility.md).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.openapi import doc
from datamgmt.api.streaming import JSON, json_response, stream
from datamgmt.core import usage_history
from datamgmt.core.account import get_account
from datamgmt.core.rse import get_rse_id

bp = Blueprint("usage_history", __name__)


@bp.get("/accounts/<account>/usage/history/<rse>")
@doc("An account's usage of an RSE over time, oldest first")
def account_usage_history(account: str, rse: str) -> Response:
    with unit_of_work(read_only=True) as session:
        authorize(session, "read")
        get_account(session, account)
        history = usage_history.account_usage_history(session, account, get_rse_id(session, rse))
    for entry in history:
        entry["updated_at"] = entry["updated_at"].strftime(
            "%Y-%m-%dT%H:%M:%S"
        )  # Rucio's format for this route
    return json_response(history)


@bp.get("/rses/<rse>/usage/history")
@doc("An RSE's usage per source over time, newest first", query={"source": {"type": "string"}})
def rse_usage_history(rse: str) -> Response:
    source = request.args.get("source")

    def rows(session: Session) -> Any:
        authorize(session, "read")
        return usage_history.rse_usage_history(session, get_rse_id(session, rse), rse, source)

    return stream(rows)


@bp.get("/rses/<rse>/accounts/usage")
@doc("Every account's usage of and quota on an RSE, one JSON document a line")
def rse_account_usage(rse: str) -> Response:
    def rows(session: Session) -> Any:
        authorize(session, "read")
        return usage_history.rse_account_usage(session, get_rse_id(session, rse), rse)

    return stream(rows, JSON)
