"""hermes: delivers the outbox (``messages``) to an AMQP broker such as RabbitMQ.

Each batch leases messages (:mod:`datamgmt.core.outbox`), publishes each one as a
persistent JSON message to ``[hermes] exchange`` (a durable topic exchange; routing key
``[hermes] routing_key``, or the event type when empty) as *mandatory* with publisher
confirms, so ``basic_publish`` returns only once the broker has routed the message to a queue
and taken it.  Then, in one transaction, the confirmed messages are deleted and the rest kept.

* A message the broker cannot route (no queue bound for its key: ``Basic.Return``, which pika
  raises as ``UnroutableError``) or refuses (``Basic.Nack``, e.g. a full queue that rejects
  publishes) stays in the outbox, logged at WARNING, and is held back before the next try,
  ``[hermes] retry_seconds`` doubling per refusal up to ``[hermes] retry_max_seconds``.  The
  rest of the batch goes on.
* When the broker fails mid-batch the connection is dropped, the unconfirmed messages stay in
  the outbox and the worker backs off before the next attempt.

Without ``[hermes] broker_url`` hermes refuses to start: an outbox nobody delivers would
grow silently.
"""

from __future__ import annotations

import json
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from sqlalchemy import Row

from datamgmt.config import get_config
from datamgmt.core import outbox
from datamgmt.core.db.session import transaction
from datamgmt.daemons import metrics
from datamgmt.daemons.common import Daemon
from datamgmt.exceptions import ConfigurationError

#: Failures that mean "the broker did not take it": connection lost or refused, channel closed.
BROKER_ERRORS = (pika.exceptions.AMQPError, OSError)
#: The broker is up but did not take this one message: no queue for it, or a queue refused it.
REFUSALS = (pika.exceptions.UnroutableError, pika.exceptions.NackError)


def body(row: Row[Any]) -> bytes:
    """The wire form of one outbox row: its event type, payload and creation time as JSON."""
    return json.dumps(
        {"id": row.id, "event_type": row.event_type, "payload": json.loads(row.payload), "created_at": row.created_at.isoformat()},
        sort_keys=True,
    ).encode()


class Hermes(Daemon):
    name = "hermes"

    def __init__(self, worker_id: str | None = None, db_url: str | None = None) -> None:
        super().__init__(worker_id, db_url)
        config = get_config()
        self.broker_url = config.get("hermes", "broker_url").strip()
        if not self.broker_url:
            self.log.error("no broker configured: set [hermes] broker_url (or DATAMGMT_HERMES_BROKER_URL)")
            raise ConfigurationError("[hermes] broker_url is not set: hermes has nowhere to deliver messages")
        self.exchange = config.get("hermes", "exchange")
        self.routing_key = config.get("hermes", "routing_key")
        self.default_batch = config.get_int("hermes", "bulk")
        self.retry_seconds = config.get_int("hermes", "retry_seconds")
        self.retry_max_seconds = config.get_int("hermes", "retry_max_seconds")
        #: Refusals so far per message id (this process's memory: a restart starts the back-off again).
        self._refusals: dict[int, int] = {}
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    def _open(self) -> BlockingChannel:
        if self._channel is None or not self._channel.is_open:
            self._close()
            self._connection = pika.BlockingConnection(pika.URLParameters(self.broker_url))
            channel = self._connection.channel()
            channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
            channel.confirm_delivery()
            self._channel = channel
        return self._channel

    def _close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except BROKER_ERRORS:
                self.log.debug("broker connection already broken")

    def run_once(self, batch: int) -> int:
        with transaction(self.db_url) as session:
            rows = outbox.claim_messages(session, self.worker_id, batch, self.lease_seconds)
        if not rows:
            self.idle = True
            return 0
        delivered, refused = self._publish(rows)
        settled = set(delivered) | set(refused)
        undelivered = [row.id for row in rows if row.id not in settled]
        with transaction(self.db_url) as session:
            removed = outbox.settle(session, self.worker_id, delivered, undelivered, self._holds(delivered, refused))
        metrics.ITEMS_PROCESSED.labels(self.name).inc(removed)
        # After a broker failure, back off instead of retrying at once.
        self.idle = bool(undelivered)
        return removed

    def _holds(self, delivered: list[int], refused: list[int]) -> dict[int, int]:
        """Seconds each refused message waits before its next try: doubling per refusal."""
        for message_id in delivered:
            self._refusals.pop(message_id, None)
        holds = {}
        for message_id in refused:
            count = self._refusals[message_id] = self._refusals.get(message_id, 0) + 1
            holds[message_id] = min(self.retry_seconds * 2 ** (count - 1), self.retry_max_seconds)
        return holds

    def _publish(self, rows: list[Row[Any]]) -> tuple[list[int], list[int]]:
        """Publish in order until the broker fails; returns the ids it confirmed and those it
        returned or refused."""
        delivered: list[int] = []
        refused: list[int] = []
        try:
            channel = self._open()
            for row in rows:
                try:
                    self._publish_one(channel, row)
                except REFUSALS as exc:
                    refused.append(row.id)
                    self._warn_refused(row, exc)
                else:
                    delivered.append(row.id)
        except BROKER_ERRORS as exc:
            self._close()
            undelivered = len(rows) - len(delivered) - len(refused)
            metrics.ITEMS_FAILED.labels(self.name).inc(undelivered)
            self.log.warning(
                "broker unavailable; undelivered messages stay in the outbox",
                extra={"fields": {"error": f"{type(exc).__name__}: {exc}", "undelivered": undelivered}},
            )
        return delivered, refused

    def _publish_one(self, channel: BlockingChannel, row: Row[Any]) -> None:
        """Publish as mandatory: with confirms on, pika raises UnroutableError for a message the
        broker returned (no queue took it) and NackError for one it refused."""
        channel.basic_publish(
            self.exchange,
            self.routing_key or row.event_type,
            body(row),
            pika.BasicProperties(
                content_type="application/json",
                delivery_mode=pika.DeliveryMode.Persistent,
                message_id=str(row.id),
                type=row.event_type,
            ),
            mandatory=True,
        )

    def _warn_refused(self, row: Row[Any], exc: Exception) -> None:
        metrics.ITEMS_FAILED.labels(self.name).inc()
        self.log.warning(
            "broker did not take the message; it stays in the outbox",
            extra={
                "fields": {
                    "message": row.id,
                    "event_type": row.event_type,
                    "exchange": self.exchange,
                    "routing_key": self.routing_key or row.event_type,
                    "error": type(exc).__name__,
                    "refusals": self._refusals.get(row.id, 0) + 1,
                }
            },
        )

    def die(self) -> None:
        self._close()
        super().die()


DAEMON = Hermes
