"""hermes's ``stomp`` service: the outbox delivered over STOMP 1.2 (``stomp.py``), as Rucio's
hermes does to ActiveMQ; RabbitMQ's STOMP plugin and ActiveMQ both speak it.

Each message is a persistent SEND to ``[hermes] stomp_destination`` with an ``event_type``
header (Rucio's) and a ``receipt`` header; it counts as delivered only when the broker's
RECEIPT for it arrives (RabbitMQ sends it after its publisher confirm, i.e. once the message
is safely queued).  Whatever goes wrong is
:class:`~datamgmt.daemons.hermes.base.Unavailable`: no connection, no receipt within
``[hermes] timeout`` seconds, or an ERROR frame, after which a STOMP broker closes the
connection (RabbitMQ names no message in it, e.g. for a destination that does not exist).

On RabbitMQ a ``/topic/…`` destination drops messages nobody subscribes to, yet receipts
them: choose a ``/queue/…`` (or ``/amq/queue/…``) destination unless every message has a
subscriber waiting.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import unquote, urlsplit

import stomp
import stomp.exception

from datamgmt.config import Config
from datamgmt.daemons.hermes.base import Outgoing, Sink, Unavailable, body
from datamgmt.exceptions import ConfigurationError

DEFAULT_PORT = 61613


class _Receipts(stomp.ConnectionListener):  # type: ignore[misc]
    """Collects the broker's RECEIPT frames and the first sign of failure (an ERROR frame, a
    lost connection), which arrive on stomp.py's reader thread."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._receipts: set[str] = set()
        self.failure: str | None = None

    def on_receipt(self, frame: Any) -> None:
        with self._changed:
            self._receipts.add(frame.headers.get("receipt-id", ""))
            self._changed.notify_all()

    def on_error(self, frame: Any) -> None:
        detail = (frame.body or "").strip()[:200]
        with self._changed:
            self.failure = (
                self.failure or f"broker sent ERROR: {frame.headers.get('message', '')} {detail}".strip()
            )
            self._changed.notify_all()

    def on_disconnected(self) -> None:
        with self._changed:
            self.failure = self.failure or "connection to the broker lost"
            self._changed.notify_all()

    def wait(self, receipt: str, timeout: float) -> None:
        """Return once ``receipt`` came back; raise Unavailable if the broker failed first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while receipt not in self._receipts:
                if self.failure is not None:
                    raise Unavailable(self.failure)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Unavailable(f"no receipt from the broker within {timeout:g} s")
                self._changed.wait(left)
            self._receipts.discard(receipt)


class StompSink(Sink):
    service = "stomp"

    def __init__(self, url: str, destination: str, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "stomp" or not parts.hostname:
            raise ConfigurationError(
                f"[hermes] stomp_url must look like stomp://USER:PASSWORD@HOST:PORT/VHOST, not {url[:80]!r}"
            )
        self.address = (parts.hostname, parts.port or DEFAULT_PORT)
        self.username = unquote(parts.username or "")
        self.password = unquote(parts.password or "")
        #: The path names the virtual host, as in AMQP URLs: empty or "/" is the default "/".
        self.vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        self.destination = destination
        self.timeout = timeout
        self._connection: stomp.Connection12 | None = None
        self._listener = _Receipts()

    @classmethod
    def from_config(cls, config: Config) -> StompSink | None:
        """The service ``[hermes] stomp_url`` configures, or None when it is empty."""
        url = config.get("hermes", "stomp_url").strip()
        if not url:
            return None
        return cls(url, config.get("hermes", "stomp_destination"), config.get_float("hermes", "timeout"))

    def _open(self) -> stomp.Connection12:
        if self._connection is not None and self._connection.is_connected():
            return self._connection
        self.close()
        self._listener = _Receipts()
        connection = stomp.Connection12(
            [self.address],
            vhost=self.vhost,
            reconnect_attempts_max=1,
            timeout=self.timeout,
            heartbeats=(0, 0),
        )
        connection.set_listener("hermes", self._listener)
        try:
            connection.connect(self.username, self.password, wait=True)
        except (stomp.exception.StompException, OSError) as exc:
            connection.transport.stop()
            reason = self._listener.failure or f"{type(exc).__name__}: {exc}"
            raise Unavailable(
                f"cannot connect to STOMP broker {self.address[0]}:{self.address[1]}: {reason}"
            ) from exc
        self._connection = connection
        return connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and connection.is_connected():
            try:
                connection.disconnect()
            except (stomp.exception.StompException, OSError):
                connection.transport.stop()

    def send(self, row: Outgoing) -> None:
        receipt = f"message-{row.key}"
        connection = self._open()
        try:
            connection.send(
                self.destination,
                body(row),
                content_type="application/json",
                headers={"persistent": "true", "event_type": row.event_type, "receipt": receipt},
            )
        except (stomp.exception.StompException, OSError) as exc:
            raise Unavailable(f"{type(exc).__name__}: {exc}") from exc
        self._listener.wait(receipt, self.timeout)
