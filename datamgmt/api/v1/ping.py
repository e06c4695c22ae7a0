"""``GET /ping``: the server version, without authentication."""

from __future__ import annotations

from flask import Blueprint, Response

from datamgmt import __version__
from datamgmt.api.auth import public
from datamgmt.api.openapi import doc
from datamgmt.api.streaming import json_response

bp = Blueprint("ping", __name__)


@bp.get("/ping")
@bp.get("/ping/")
@public
@doc("Server version")
def ping() -> Response:
    return json_response({"version": __version__})
