"""hermes: delivers the outbox (``messages``) to an AMQP broker such as RabbitMQ.

Each batch leases messages (:mod:`datamgmt.core.outbox`), publishes each one as a
persistent JSON message to ``[hermes] exchange`` (a durable topic exchange; routing key
``[hermes] routing_key``, or the event type when empty) with publisher confirms, so
``basic_publish`` returns only once the broker has taken the message.  Then, in one
transaction, the confirmed messages are deleted and the rest released.  When the broker
fails mid-batch the connection is dropped, the unconfirmed messages stay in the outbox and
the worker backs off before the next attempt.

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

#: Failures that mean "the broker did not take it": connection lost or refused, channel closed, nack.
BROKER_ERRORS = (pika.exceptions.AMQPError, OSError)


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
        delivered = self._publish(rows)
        undelivered = [row.id for row in rows[len(delivered) :]]
        with transaction(self.db_url) as session:
            removed = outbox.settle(session, self.worker_id, delivered, undelivered)
        metrics.ITEMS_PROCESSED.labels(self.name).inc(removed)
        # After a broker failure, back off instead of retrying at once.
        self.idle = bool(undelivered)
        return removed

    def _publish(self, rows: list[Row[Any]]) -> list[int]:
        """Publish in order until the broker fails; returns the ids it confirmed."""
        delivered: list[int] = []
        try:
            channel = self._open()
            for row in rows:
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
                )
                delivered.append(row.id)
        except BROKER_ERRORS as exc:
            self._close()
            metrics.ITEMS_FAILED.labels(self.name).inc(len(rows) - len(delivered))
            self.log.warning(
                "broker unavailable; undelivered messages stay in the outbox",
                extra={"fields": {"error": f"{type(exc).__name__}: {exc}", "undelivered": len(rows) - len(delivered)}},
            )
        return delivered

    def die(self) -> None:
        self._close()
        super().die()


DAEMON = Hermes
