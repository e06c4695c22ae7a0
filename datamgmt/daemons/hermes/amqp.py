"""hermes's ``amqp`` service: the outbox delivered to an AMQP broker such as RabbitMQ.

Each message is published as a persistent JSON message to ``[hermes] exchange`` (a durable
topic exchange; routing key ``[hermes] routing_key``, or the event type when empty) as
*mandatory* with publisher confirms, so ``basic_publish`` returns only once the broker has
routed the message to a queue and taken it.

* A message the broker cannot route (no queue bound for its key: ``Basic.Return``, which pika
  raises as ``UnroutableError``) or refuses (``Basic.Nack``, e.g. a full queue that rejects
  publishes) is :class:`~datamgmt.daemons.hermes.base.Refused`.
* A connection lost or refused, or a channel closed, is
  :class:`~datamgmt.daemons.hermes.base.Unavailable`.
"""

from __future__ import annotations

import contextlib

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from datamgmt.config import Config
from datamgmt.daemons.hermes.base import Outgoing, Refused, Sink, Unavailable, body

#: Failures that mean "the broker did not take it": connection lost or refused, channel closed.
BROKER_ERRORS = (pika.exceptions.AMQPError, OSError)
#: The broker is up but did not take this one message: no queue for it, or a queue refused it.
REFUSALS = (pika.exceptions.UnroutableError, pika.exceptions.NackError)


class AmqpSink(Sink):
    service = "amqp"

    def __init__(self, broker_url: str, exchange: str, routing_key: str) -> None:
        self.broker_url = broker_url
        self.exchange = exchange
        self.routing_key = routing_key
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    @classmethod
    def from_config(cls, config: Config) -> AmqpSink | None:
        """The service ``[hermes] broker_url`` configures, or None when it is empty."""
        url = config.get("hermes", "broker_url").strip()
        if not url:
            return None
        return cls(url, config.get("hermes", "exchange"), config.get("hermes", "routing_key"))

    def _open(self) -> BlockingChannel:
        if self._channel is None or not self._channel.is_open:
            self.close()
            self._connection = pika.BlockingConnection(pika.URLParameters(self.broker_url))
            channel = self._connection.channel()
            channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
            channel.confirm_delivery()
            self._channel = channel
        return self._channel

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(*BROKER_ERRORS):  # already broken: nothing left to close
                connection.close()

    def send(self, row: Outgoing) -> None:
        """Publish as mandatory: with confirms on, pika raises UnroutableError for a message the
        broker returned (no queue took it) and NackError for one it refused."""
        routing_key = self.routing_key or row.event_type
        try:
            self._open().basic_publish(
                self.exchange,
                routing_key,
                body(row),
                pika.BasicProperties(
                    content_type="application/json",
                    delivery_mode=pika.DeliveryMode.Persistent,
                    message_id=row.key,
                    type=row.event_type,
                ),
                mandatory=True,
            )
        except REFUSALS as exc:
            raise Refused(type(exc).__name__, exchange=self.exchange, routing_key=routing_key) from exc
        except BROKER_ERRORS as exc:
            raise Unavailable(f"{type(exc).__name__}: {exc}") from exc
