"""Fixtures of the daemon integration tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest

from datamgmt.config import reset_config
from tests.integration.daemons.brokers import BROKER


@pytest.fixture
def consumer(monkeypatch) -> Iterator[tuple[str, pika.adapters.blocking_connection.BlockingChannel, str]]:
    """A fresh exchange for hermes, and a temporary queue bound to all of it: (exchange, channel, queue)."""
    try:
        connection = pika.BlockingConnection(pika.URLParameters(BROKER))
    except pika.exceptions.AMQPConnectionError:
        pytest.skip("no RabbitMQ on 127.0.0.1:5672 (start rabbitmq-server)")
    channel = connection.channel()
    exchange = f"datamgmt-test-{uuid.uuid4().hex[:8]}"
    channel.exchange_declare(exchange, exchange_type="topic", durable=True)
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, exchange, routing_key="#")
    monkeypatch.setenv("DATAMGMT_HERMES_BROKER_URL", BROKER)
    monkeypatch.setenv("DATAMGMT_HERMES_EXCHANGE", exchange)
    reset_config()
    yield exchange, channel, queue
    channel.exchange_delete(exchange)
    connection.close()
    reset_config()
