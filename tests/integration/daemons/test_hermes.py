"""hermes against a real RabbitMQ on 127.0.0.1:5672: every message arrives once, an outage loses nothing."""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest
from sqlalchemy import func, select

from datamgmt.config import reset_config
from datamgmt.core.db.models import Message
from datamgmt.core.message import add_messages
from datamgmt.daemons.hermes import Hermes
from datamgmt.exceptions import ConfigurationError
from tests.integration.daemons.catalogue import run_daemon

pytestmark = pytest.mark.integration

BROKER = "amqp://guest:guest@127.0.0.1:5672/"
ON_POSTGRESQL = os.environ.get("DATAMGMT_TEST_DB_URL", "").startswith("postgresql")


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


def received(channel, queue: str) -> list[dict]:
    bodies = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return bodies
        assert properties.delivery_mode == 2 and properties.content_type == "application/json"
        bodies.append({**json.loads(body), "routing_key": method.routing_key})


def fill_outbox(session, count: int) -> None:
    add_messages(session, "deletion-done", [{"name": f"f{i}", "i": i} for i in range(count)])
    session.commit()


def outbox_size(session) -> int:
    size = session.scalar(select(func.count()).select_from(Message))
    session.rollback()
    return size


def test_every_message_arrives_once_and_the_outbox_empties(session, consumer):
    _, channel, queue = consumer
    fill_outbox(session, 2500)
    hermes = Hermes("h")
    while hermes.run_once(1000):
        pass
    assert hermes.idle
    hermes.die()

    messages = received(channel, queue)
    assert Counter(m["payload"]["i"] for m in messages) == Counter(range(2500))
    assert {m["event_type"] for m in messages} == {m["routing_key"] for m in messages} == {"deletion-done"}
    assert [m["payload"]["i"] for m in messages] == list(range(2500))  # oldest first
    assert outbox_size(session) == 0


def test_broker_outage_keeps_every_message(session, consumer, monkeypatch):
    _, channel, queue = consumer
    fill_outbox(session, 30)
    monkeypatch.setenv("DATAMGMT_HERMES_BROKER_URL", "amqp://guest:guest@127.0.0.1:1/")
    reset_config()
    down = Hermes("down")
    assert down.run_once(1000) == 0
    assert down.idle  # backs off
    assert outbox_size(session) == 30
    assert session.scalar(select(func.count()).where(Message.claimed_by.is_not(None))) == 0  # released, not held
    session.rollback()

    monkeypatch.setenv("DATAMGMT_HERMES_BROKER_URL", BROKER)
    reset_config()
    assert Hermes("up").run_once(1000) == 30
    assert Counter(m["payload"]["i"] for m in received(channel, queue)) == Counter(range(30))
    assert outbox_size(session) == 0


def test_unconfigured_broker_refuses_to_start(db, monkeypatch):
    monkeypatch.setenv("DATAMGMT_HERMES_BROKER_URL", "")
    reset_config()
    with pytest.raises(ConfigurationError, match="broker_url"):
        Hermes("h")
    process = run_daemon(db, "hermes", "--run-once")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "broker_url" in stderr
    reset_config()


@pytest.mark.skipif(not ON_POSTGRESQL, reason="DATAMGMT_TEST_DB_URL is unset: concurrent instances need PostgreSQL")
def test_two_instances_deliver_each_message_once(db, session, consumer):
    _, channel, queue = consumer
    fill_outbox(session, 3000)
    workers = [run_daemon(db, "hermes", "--run-once", "--batch-size", "100") for _ in range(2)]
    for worker in workers:
        _, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr
    assert Counter(m["payload"]["i"] for m in received(channel, queue)) == Counter(range(3000))
    assert outbox_size(session) == 0
