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
from datetime import datetime
from typing import Any, ClassVar, NamedTuple

from datamgmt.core.vo import DEFAULT_VO


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


class Outgoing(NamedTuple):
    """One outbox message on its way out, with the VO whose catalogue holds it."""

    #: The outbox row's id: unique within its VO's catalogue (core/vo.py), not across VOs.
    id: int
    event_type: str
    payload: str
    created_at: datetime
    vo: str = DEFAULT_VO

    @property
    def key(self) -> str:
        """The id receivers deduplicate on: unique across the instance, so two VOs' messages
        with the same row id never pass for one (``<vo>:<id>`` outside the default VO)."""
        return str(self.id) if self.vo == DEFAULT_VO else f"{self.vo}:{self.id}"


def body(message: Outgoing) -> bytes:
    """The wire form of one message: its id, event type, payload and creation time as JSON;
    outside the default VO also the VO, at the top and in the payload, as Rucio adds it.

    The same bytes for every service and every retry, so a receiver can deduplicate on ``id``
    (with ``vo``; delivery is at least once: see :mod:`datamgmt.core.outbox`)."""
    payload = json.loads(message.payload)
    document: dict[str, Any] = {
        "id": message.id,
        "event_type": message.event_type,
        "payload": payload,
        "created_at": message.created_at.isoformat(),
    }
    if message.vo != DEFAULT_VO:
        document["vo"] = message.vo
        if isinstance(payload, dict):
            payload["vo"] = message.vo
    return json.dumps(document, sort_keys=True).encode()


class Sink(ABC):
    """One delivery service of hermes, named as messages' ``services`` name it."""

    service: ClassVar[str]

    def deliver(self, rows: Sequence[Outgoing]) -> Outcome:
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
    def send(self, row: Outgoing) -> None:
        """Deliver one message, (re)connecting as needed; returns once the endpoint took it."""

    @abstractmethod
    def close(self) -> None:
        """Drop the connection, if any; the next :meth:`send` opens a new one."""
