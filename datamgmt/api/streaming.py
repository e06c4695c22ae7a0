"""Response bodies in Rucio's formats: JSON documents, JSON streams, RFC 1123 dates.

The stock client parses a body only when ``Content-Type`` is exactly
``application/json`` or ``application/x-json-stream`` (no charset), and turns every
string holding ``" UTC"`` into a datetime, so dates go out as
``Tue, 24 Nov 2026 18:50:54 UTC``.  Streams are generated lazily inside their own
transaction, so a listing of 10^6 rows keeps memory flat.
"""

from __future__ import annotations

import enum
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from itertools import chain
from typing import Any

from flask import Response, current_app, request
from sqlalchemy.orm import Session
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from datamgmt.api.context import unit_of_work
from datamgmt.exceptions import DatabaseUnavailable, ServiceUnavailable, UnsupportedRequestedContentType

log = logging.getLogger(__name__)
JSON = "application/json"
JSON_STREAM = "application/x-json-stream"
_END = object()
_SLOTS = "datamgmt.stream_slots"


def rfc1123(moment: datetime) -> str:
    """Rucio's date format: RFC 1123 with a literal ``UTC`` (all stored times are UTC)."""
    return moment.strftime("%a, %d %b %Y %H:%M:%S UTC")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc1123(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, Decimal):
        # PostgreSQL sums come back as Decimal.
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> str:
    return json.dumps(value, default=_default, separators=(", ", ": "))


def check_accept(content_type: str) -> None:
    """406 unless the request's Accept admits ``content_type`` (no Accept admits all)."""
    accept = request.environ.get("HTTP_ACCEPT")
    if accept and not _admits(accept, content_type):
        raise UnsupportedRequestedContentType(
            f"The requested content type {accept[:100]} is not supported. Use ['{content_type}']."
        )


@lru_cache(maxsize=256)
def _admits(accept: str, content_type: str) -> bool:
    """Parsing an Accept header costs more than the rest of a small GET's answer, and clients
    send the same few (``*/*``, ``application/json``) on every call: remember the verdicts."""
    return parse_accept_header(accept, MIMEAccept).best_match([content_type]) is not None


def json_response(value: Any, status: int = 200) -> Response:
    check_accept(JSON)
    return Response(dumps(value), status=status, content_type=JSON)


def created(body: str = "Created") -> Response:
    """Rucio's 201: the literal ``Created`` (or a JSON list of ids) as text/html."""
    return Response(body, status=201, content_type="text/html; charset=utf-8")


def done() -> Response:
    """Rucio's 200 for updates and deletes: an empty text/html body."""
    return Response("", status=200, content_type="text/html; charset=utf-8")


#: Renders a stream's items as the chunks of its body.
Renderer = Callable[[Iterator[Any]], Iterator[str]]


def json_lines(items: Iterator[Any]) -> Iterator[str]:
    """One JSON document per line, sent in batches of ``[api] stream_batch`` lines.

    The batch size is read now, in the request: the body is generated after the view returns,
    outside the application context."""
    return _batches((dumps(item) + "\n" for item in items), _batch())


def rendered_stream(lines: Iterable[str]) -> Response:
    """A JSON stream of lines the view rendered itself from memory (each ending in a newline),
    sent whole with a ``Content-Length``: no transaction, stream slot or chunked framing is
    held for what is already computed.  For answers bounded in size (one line per RSE)."""
    check_accept(JSON_STREAM)
    return Response("".join(lines), content_type=JSON_STREAM)


def _batches(lines: Iterator[str], batch: int) -> Iterator[str]:
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= batch:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


def stream_items(items: Iterable[Any]) -> Response:
    """Stream items already computed (small listings)."""
    check_accept(JSON_STREAM)
    return Response(json_lines(iter(items)), content_type=JSON_STREAM)


def stream(
    produce: Callable[[Session], Iterable[Any]],
    content_type: str = JSON_STREAM,
    render: Renderer = json_lines,
) -> Response:
    """Stream what ``produce(session)`` yields, rendered by ``render`` (JSON lines by default).

        The first chunk (for JSON lines, the first batch) is computed before the response starts,
        so permission and not-found errors, and a database drop, still become proper error
        responses (a drop is the retriable 503); the transaction stays open while the client reads
        and closes when the stream ends or is abandoned.  At most ``[api] max_streams`` streams run
    at once in a worker (:func:`_stream_slot`).  A drop after the first chunk can only cut
        the stream short, which the client reports as retriable too; a drop at the final COMMIT,
        with every line sent, changes nothing.
    """
    check_accept(content_type)
    stack = ExitStack()
    stack.callback(_stream_slot().release)
    try:
        session = stack.enter_context(unit_of_work(read_only=True))
        iterator = iter(produce(session))
        first = next(iterator, _END)
        if first is _END:
            stack.close()
            return Response("".join(render(iter(()))), content_type=content_type)
        chunks = render(
            chain([first], iterator)
        )  # called in the request: renderers may read the app's config
        head = next(chunks, "")
    except BaseException as exc:
        stack.__exit__(type(exc), exc, exc.__traceback__)
        raise

    def body() -> Iterator[str]:
        try:
            yield head
            yield from chunks
        except BaseException as exc:
            stack.__exit__(type(exc), exc, exc.__traceback__)
            raise
        _end_read_only(stack)

    return Response(body(), content_type=content_type)


def _stream_slot() -> threading.BoundedSemaphore:
    """Take one of the worker's ``[api] max_streams`` slots, or refuse with 503 + Retry-After.

    A stream keeps its thread and its read transaction until the client has read the last
    line, so a few slow readers could otherwise hold every thread of the worker.
    """
    slots: threading.BoundedSemaphore | None = current_app.extensions.get(_SLOTS)
    if slots is None:
        slots = current_app.extensions.setdefault(
            _SLOTS, threading.BoundedSemaphore(current_app.config["MAX_STREAMS"])
        )
    if not slots.acquire(blocking=False):
        busy = ServiceUnavailable("Too many listings are being streamed; retry shortly")
        busy.retry_after = 1
        raise busy
    return slots


def _end_read_only(stack: ExitStack) -> None:
    """End a stream's read-only unit once every line went out.  A connection lost at its
    COMMIT cost nothing (nothing was written), so the whole answer stands instead of being
    cut at its last chunk."""
    try:
        stack.close()
    except DatabaseUnavailable as exc:
        log.warning("a stream's read-only transaction could not end after its last line: %s", exc.message)


def _batch() -> int:
    return int(current_app.config["STREAM_BATCH"])
