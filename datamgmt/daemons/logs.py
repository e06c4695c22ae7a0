"""One log format for the server and the daemons: JSON lines for shippers, or the same
records as readable lines on a terminal.

``[logging] format`` chooses: ``json`` (one object per line: log shippers and ``jq`` read
these without parsing prose), ``text`` (``time LEVEL logger message key=value ...``), or
``auto`` (the default: text when stderr is a terminal, JSON otherwise).  Fields passed as
``extra={"fields": {...}}`` become top-level keys next to ``ts``, ``level``, ``logger`` and
``msg`` (or trailing ``key=value`` pairs); a :class:`WorkerLogger` adds ``daemon`` and
``worker`` to every line.  gfal2 logs every operation at INFO; ``[logging] gfal2_level``
(default WARNING) keeps that out unless asked for.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

from datamgmt.config import get_config


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """The JSON line's content for people: time, level, logger, message, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        fields = " ".join(f"{key}={value}" for key, value in getattr(record, "fields", {}).items())
        line = f"{stamp}Z {record.levelname:<7} {record.name}: {record.getMessage()}{' ' if fields else ''}{fields}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class WorkerLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Adds the daemon and worker to each line and merges per-call ``fields``."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(kwargs.get("extra") or {})
        extra["fields"] = {**(self.extra or {}), **extra.get("fields", {})}
        kwargs["extra"] = extra
        return msg, kwargs


def formatter(fmt: str | None = None) -> logging.Formatter:
    """The formatter ``[logging] format`` (or ``fmt``) asks for."""
    chosen = (fmt or get_config().get("logging", "format") or "auto").lower()
    if chosen == "auto":
        chosen = "text" if sys.stderr.isatty() else "json"
    return TextFormatter() if chosen == "text" else JsonFormatter()


def configure(level: str = "info", fmt: str | None = None) -> None:
    """Send every log record to stderr at ``level``, in the configured format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("gfal2").setLevel(get_config().get("logging", "gfal2_level").upper())
