"""``/redirect``: send an HTTP client straight to a file's bytes, as Rucio's redirector does.

``GET /redirect/{scope}/{name}`` answers 303 to the best PFN among the HTTP-capable schemes
(``schemes``, default davs, https and s3; davs and s3 URLs are given as https so any HTTP
client can follow), optionally only on one ``rse``; ``/metalink`` lists every PFN as Metalink 4.
Unlike Rucio's, it needs a token like every other route, and sends no CORS headers.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, redirect, request
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.metalink import METALINK, metalink
from datamgmt.api.openapi import doc
from datamgmt.api.pfns import PFNBuilder
from datamgmt.api.streaming import stream
from datamgmt.core import replica as replicas
from datamgmt.exceptions import ReplicaNotFound

bp = Blueprint("redirect", __name__, url_prefix="/redirect")
HTTP_SCHEMES = ["davs", "https", "s3"]
_AS_HTTPS = {"davs://": "https://", "s3://": "https://"}


def _entries(session: Session, scope: str, name: str, schemes: list[str] | None) -> list[dict[str, Any]]:
    builder = PFNBuilder(session, "wan", schemes)
    return [
        builder.describe(entry) for entry in replicas.list_replicas(session, [{"scope": scope, "name": name}])
    ]


@bp.get("/<scope>/<path:name>")
@doc("303 to the file's best HTTP PFN (``schemes``, ``rse``)", query={"rse": {"type": "string"}})
def redirect_to_file(scope: str, name: str) -> BaseResponse:
    name = name.rstrip("/")  # Rucio serves the name with a trailing slash too
    schemes = request.args.getlist("schemes") or HTTP_SCHEMES
    rse = request.args.get("rse")
    with unit_of_work(read_only=True) as session:
        authorize(session, "read")
        entries = _entries(session, scope, name, schemes)
    ranked = sorted(
        (replica["priority"], pfn)
        for entry in entries
        for pfn, replica in entry["pfns"].items()
        if rse is None or replica["rse"] == rse
    )
    if not ranked:
        raise ReplicaNotFound(
            f"no replica of {scope}:{name} reachable over HTTP" + (f" on {rse}" if rse else "")
        )
    url = ranked[0][1]
    for prefix, replacement in _AS_HTTPS.items():
        if url.startswith(prefix):
            url = replacement + url[len(prefix) :]
    return redirect(url, code=303)


@bp.get("/<scope>/<path:name>/metalink")
@doc("Every PFN of the file as Metalink 4")
def file_metalink(scope: str, name: str) -> Response:
    schemes = request.args.getlist("schemes") or None

    def rows(session: Session) -> Any:
        authorize(session, "read")
        return _entries(session, scope, name, schemes)

    return stream(rows, METALINK, metalink)
