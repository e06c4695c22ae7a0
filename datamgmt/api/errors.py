"""One place that turns every failure into Rucio's error response.

The stock client reads ``ExceptionClass``/``ExceptionMessage`` from the JSON body and
then from the headers, and re-raises the class by name, so both carry the same pair.
Nothing unexpected ever reaches the client as a stack trace: it is logged with the
request id and answered with a generic 500.  A transient failure (an error with a
``retry_after``, such as a lost database connection) is a 503 with ``Retry-After``, which
tells clients that repeating the call later is the cure.
"""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, g
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from datamgmt.core.db.session import is_unavailable
from datamgmt.exceptions import DatabaseUnavailable, DatamgmtError

log = logging.getLogger(__name__)

#: Rucio cuts the header copy of the message to this many characters, then adds "...".
HEADER_MESSAGE_LIMIT = 125
ERROR_CONTENT_TYPE = "application/octet-stream"


def header_message(message: str) -> str:
    """The message as a header can carry it: one line, latin-1 safe, cut as Rucio cuts it."""
    text = message.replace("\r", " ").replace("\n", " ")
    text = text.encode("ascii", "replace").decode("ascii")
    return text[:HEADER_MESSAGE_LIMIT] + "..." if len(text) > HEADER_MESSAGE_LIMIT else text


def error_response(
    status: int, error_class: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps({"ExceptionClass": error_class, "ExceptionMessage": message})
    response = Response(body, status=status, content_type=ERROR_CONTENT_TYPE)
    response.headers["ExceptionClass"] = error_class
    response.headers["ExceptionMessage"] = header_message(message)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _http_error(exc: HTTPException) -> Response:
    # Unknown routes and methods answer in the same format as every other error.
    headers = {"Allow": exc.get_response().headers["Allow"]} if exc.code == 405 else None
    name = type(exc).__name__ if type(exc) is not HTTPException else "RucioException"
    return error_response(exc.code or 500, name, exc.description or name, headers)


def _known_error(exc: DatamgmtError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    if exc.status >= 500:
        log.warning("request %s failed: %s: %s", getattr(g, "request_id", "-"), exc.error_class, exc.message)
    return error_response(exc.status, exc.error_class, exc.message, headers)


def _unexpected_error(exc: Exception) -> Response:
    if is_unavailable(exc):
        # The database failed outside a unit of work (a stream being read): as transient as inside one.
        return _known_error(DatabaseUnavailable(f"The database is unavailable ({type(exc).__name__})"))
    request_id = getattr(g, "request_id", "-")
    log.exception("request %s failed unexpectedly", request_id)
    error_class = "DatabaseException" if isinstance(exc, SQLAlchemyError) else "RucioException"
    return error_response(500, error_class, f"An internal error occurred (request id {request_id})")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DatamgmtError, _known_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
