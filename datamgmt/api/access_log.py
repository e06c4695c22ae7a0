"""Access lines in gunicorn's default (Apache combined) format, for less work per request.

gunicorn formats each access line from a dictionary of every atom it knows, including one
entry per request header, response header and WSGI environ variable, and a freshly
``strftime``-ed date: about 0.2 ms of a worker's CPU per request on a 2-core VM, as much as
the whole of a one-row ``GET``.  With the default format, which ``etc/gunicorn.conf.py`` uses,
:class:`AccessLogger` computes only the nine atoms that format names and reuses the date
string within a second; any other ``access_log_format`` is formatted by gunicorn itself.

granian's own access log goes through :mod:`logging` with a date formatted per request (0.06
to 0.15 ms a request here), and its line differs from gunicorn's: under granian the app is
wrapped in :class:`AccessLines`, which writes the same line as under gunicorn, so operators'
log parsing does not depend on the server.
"""

from __future__ import annotations

import base64
import binascii
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from gunicorn.config import AccessLogFormat
from gunicorn.glogging import Logger

#: Characters of a path that a client sends unquoted (RFC 3986 ``pchar`` less the unreserved ones).
_PATH_SAFE = "/;=,:@!$&'()*+"
#: A WSGI application (PEP 3333): ``app(environ, start_response)`` -> body chunks.
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Clock:
    """gunicorn's ``%(t)s`` (Apache's date), formatted once a second rather than once a request."""

    def __init__(self) -> None:
        self._second = -1
        self._stamp = ""

    def stamp(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._stamp, self._second = time.strftime("[%d/%b/%Y:%H:%M:%S %z]"), second
        return self._stamp


def combined_line(environ: dict[str, Any], uri: str, status: str, sent: int | None, stamp: str) -> str:
    """gunicorn's default access line: ``h l u t "r" s b "f" "a"``."""
    return '%s - %s %s "%s %s %s" %s %s "%s" "%s"' % (  # noqa: UP031  # gunicorn's own format, atom by atom
        environ.get("REMOTE_ADDR", "-"),
        _basic_user(environ) or "-",
        stamp,
        environ["REQUEST_METHOD"],
        uri,
        environ["SERVER_PROTOCOL"],
        status,
        sent if sent is not None else "-",
        environ.get("HTTP_REFERER", "-"),
        environ.get("HTTP_USER_AGENT", "-"),
    )


def _basic_user(environ: dict[str, Any]) -> str | None:
    """The user name of a Basic ``Authorization`` header, as gunicorn logs it (``%(u)s``)."""
    header = environ.get("HTTP_AUTHORIZATION")
    if not header or not header.lower().startswith("basic"):
        return None
    parts = header.split(" ", 1)
    if len(parts) != 2:
        return None
    try:
        return base64.b64decode(parts[1].strip().encode()).split(b":", 1)[0].decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


class AccessLogger(Logger):  # type: ignore[misc]  # gunicorn ships no types: its base class is Any
    """``logger_class`` of ``datamgmt-server``: gunicorn's logger with a cheap default access line."""

    _clock = _Clock()

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not self.access_log_enabled:
            return
        if self.cfg.access_log_format != AccessLogFormat.default:
            super().access(resp, req, environ, request_time)
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        line = combined_line(
            environ, environ["RAW_URI"], status, getattr(resp, "sent", None), self._clock.stamp()
        )
        try:
            self.access_log.info(line)
        except Exception:  # gunicorn's own rule: a failed access line never fails the request
            self.exception("could not write the access log line")


class AccessLines:
    """WSGI middleware: one gunicorn-style access line per request, written when its body ends.

    Each line is one ``write(2)`` of a whole line to ``fd`` (standard output by default), so the
    lines of concurrent threads and worker processes never interleave (a pipe takes writes of
    up to 4 KiB whole; the line is cut to fit).
    """

    def __init__(self, app: WSGIApp, fd: int | None = None) -> None:
        self.app = app
        self.fd = sys.stdout.fileno() if fd is None else fd
        self._clock = _Clock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        answer: list[str] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer[:] = [status.split(" ", 1)[0]]
            return start_response(status, headers, exc_info)

        return _LoggedBody(self, environ, answer, self.app(environ, start))

    def write(self, environ: dict[str, Any], status: str, sent: int) -> None:
        uri = environ.get("RAW_URI") or quote(
            environ.get("PATH_INFO", "").encode("latin-1", "replace"), safe=_PATH_SAFE
        )
        if environ.get("QUERY_STRING") and "RAW_URI" not in environ:
            uri = f"{uri}?{environ['QUERY_STRING']}"
        line = combined_line(environ, uri, status, sent, self._clock.stamp())
        try:
            os.write(self.fd, (line[:4000] + "\n").encode(errors="replace"))
        except OSError:
            pass  # as under gunicorn: a lost access line never fails the request


class _LoggedBody:
    """The app's body, passed through chunk by chunk; the line is written when the server closes it."""

    def __init__(self, log: AccessLines, environ: dict[str, Any], answer: list[str], body: Iterable[bytes]):
        self._log, self._environ, self._answer, self._body = log, environ, answer, body
        self._sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            self._sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._log.write(self._environ, self._answer[0] if self._answer else "500", self._sent)
