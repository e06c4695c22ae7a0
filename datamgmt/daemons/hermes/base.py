"""What every hermes delivery service shares: the wire form of a message and the delivery loop.

A service (AMQP, STOMP, webhook) sends one message at a time and says how it went by raising
one of two errors, because they call for different remedies:

* :class:`Refused`: the endpoint is up but did not take *this* message (no queue for it, an
  HTTP 4xx).  The message waits with back-off; the rest of the batch goes on.
* :class:`Unavailable`: the endpoint itself failed (connection lost, timeout, HTTP 5xx).
  Nothing more is sent this batch, the messages not yet taken go back to the outbox at once
  and the daemon backs off.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import Row


class Refused(Exception):
    """The endpoint did not take this one message: ``reason`` says why, ``fields`` (logged with
    it) where it was going."""

    def __init__(self, reason: str, **fields: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fields = fields


class Unavailable(Exception):
    """The endpoint failed; the argument says how."""


@dataclass
class Outcome:
    """What one service did with a batch: the ids it took, those it refused (id → why), and
    why it stopped early (None when it got through the batch)."""

    delivered: list[int] = field(default_factory=list)
    refused: dict[int, Refused] = field(default_factory=dict)
    error: str | None = None


def body(row: Row[Any]) -> bytes:
    """The wire form of one outbox row: its id, event type, payload and creation time as JSON.

    The same bytes for every service and every retry, so a receiver can deduplicate on ``id``
    (delivery is at least once: see :mod:`datamgmt.core.outbox`)."""
    return json.dumps(
        {
            "id": row.id,
            "event_type": row.event_type,
            "payload": json.loads(row.payload),
            "created_at": row.created_at.isoformat(),
        },
        sort_keys=True,
    ).encode()


class Sink(ABC):
    """One delivery service of hermes, named as messages' ``services`` name it."""

    service: ClassVar[str]

    def deliver(self, rows: Sequence[Row[Any]]) -> Outcome:
        """Send ``rows`` in order until the endpoint fails."""
        outcome = Outcome()
        try:
            for row in rows:
                try:
                    self.send(row)
                except Refused as exc:
                    outcome.refused[row.id] = exc
                else:
                    outcome.delivered.append(row.id)
        except Unavailable as exc:
            self.close()
            outcome.error = str(exc)
        return outcome

    @abstractmethod
    def send(self, row: Row[Any]) -> None:
        """Deliver one message, (re)connecting as needed; returns once the endpoint took it."""

    @abstractmethod
    def close(self) -> None:
        """Drop the connection, if any; the next :meth:`send` opens a new one."""
