"""gunicorn's access log, the same lines for less work per request.

gunicorn formats each access line from a dictionary of every atom it knows, including one
entry per request header, response header and WSGI environ variable, and a freshly
``strftime``-ed date: about 0.2 ms of a worker's CPU per request on a 2-core VM, as much as
the whole of a one-row ``GET``.  With the default (Apache combined) format, which
``etc/gunicorn.conf.py`` uses, :class:`AccessLogger` computes only the nine atoms that format
names and reuses the date string within a second; any other ``access_log_format`` is
formatted by gunicorn itself, unchanged.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from gunicorn.config import AccessLogFormat
from gunicorn.glogging import Logger


class AccessLogger(Logger):  # type: ignore[misc]  # gunicorn ships no types: its base class is Any
    """``logger_class`` of ``datamgmt-server``: gunicorn's logger with a cheap default access line."""

    _second = -1
    _stamp = ""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not self.access_log_enabled:
            return
        if self.cfg.access_log_format != AccessLogFormat.default:
            super().access(resp, req, environ, request_time)
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        sent = getattr(resp, "sent", None)
        user = self._get_user(environ) if "HTTP_AUTHORIZATION" in environ else None
        line = '%s - %s %s "%s %s %s" %s %s "%s" "%s"' % (  # noqa: UP031  # gunicorn's own format, atom by atom
            environ.get("REMOTE_ADDR", "-"),
            user or "-",
            self._now(),
            environ["REQUEST_METHOD"],
            environ["RAW_URI"],
            environ["SERVER_PROTOCOL"],
            status,
            sent if sent is not None else "-",
            environ.get("HTTP_REFERER", "-"),
            environ.get("HTTP_USER_AGENT", "-"),
        )
        try:
            self.access_log.info(line)
        except Exception:  # gunicorn's own rule: a failed access line never fails the request
            self.exception("could not write the access log line")

    def _now(self) -> str:
        """gunicorn's ``%(t)s``, formatted once a second rather than once a request."""
        second = int(time.time())
        if second != self._second:
            self._stamp, self._second = self.now(), second
        return self._stamp
