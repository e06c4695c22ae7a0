"""hermes loses nothing the broker did not take (issue 15, defect 7), against the real RabbitMQ.

A message published to an exchange with no queue bound for its routing key is dropped by the
broker yet still confirmed, unless it is published as mandatory; a queue that rejects publishes
nacks it.  Either way the message must stay in the outbox and arrive once a queue takes it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest
from sqlalchemy import select

from datamgmt.config import reset_config
from datamgmt.core.db.models import Message
from datamgmt.core.message import add_messages
from datamgmt.daemons.hermes import Hermes
from tests.integration.daemons.brokers import BROKER, outbox_size

pytestmark = pytest.mark.integration

RETRY_SECONDS = 1


@pytest.fixture
def broker(monkeypatch) -> Iterator[tuple[str, pika.adapters.blocking_connection.BlockingChannel]]:
    """A fresh exchange with nothing bound to it yet: (exchange, channel)."""
    try:
        connection = pika.BlockingConnection(pika.URLParameters(BROKER))
    except pika.exceptions.AMQPConnectionError:
        pytest.skip("no RabbitMQ on 127.0.0.1:5672 (start rabbitmq-server)")
    channel = connection.channel()
    exchange = f"datamgmt-unrouted-{uuid.uuid4().hex[:8]}"
    channel.exchange_declare(exchange, exchange_type="topic", durable=True)
    monkeypatch.setenv("DATAMGMT_HERMES_BROKER_URL", BROKER)
    monkeypatch.setenv("DATAMGMT_HERMES_EXCHANGE", exchange)
    monkeypatch.setenv("DATAMGMT_HERMES_RETRY_SECONDS", str(RETRY_SECONDS))
    reset_config()
    yield exchange, channel
    channel.exchange_delete(exchange)
    connection.close()
    reset_config()


def queue_for(channel, exchange: str, routing_key: str, **arguments) -> str:
    queue = channel.queue_declare("", exclusive=True, arguments=arguments or None).method.queue
    channel.queue_bind(queue, exchange, routing_key=routing_key)
    return queue


def drained(channel, queue: str) -> list[dict]:
    bodies = []
    while (got := channel.basic_get(queue, auto_ack=True))[0] is not None:
        bodies.append(json.loads(got[2]))
    return bodies


def held_messages(session) -> set[str]:
    """Event types of the outbox rows nobody may claim yet (released with a back-off hold)."""
    rows = set(session.scalars(select(Message.event_type).where(Message.claimed_until.is_not(None))))
    session.rollback()
    return rows


def test_unroutable_message_stays_until_a_queue_is_bound(session, broker, caplog):
    exchange, channel = broker
    routed = queue_for(channel, exchange, "transfer-done")
    add_messages(session, "transfer-done", [{"n": 1}])
    add_messages(session, "rule-ok", [{"n": 2}])  # no queue is bound for this key
    session.commit()

    hermes = Hermes("h")
    with caplog.at_level(logging.WARNING, logger="datamgmt.daemons"):
        assert hermes.run_once(100) == 1
    assert [m["event_type"] for m in drained(channel, routed)] == ["transfer-done"]
    assert outbox_size(session) == 1 and held_messages(session) == {"rule-ok"}
    warning = next(r for r in caplog.records if "did not take" in r.getMessage())
    assert warning.fields["routing_key"] == "rule-ok" and warning.fields["error"] == "UnroutableError"
    assert hermes.run_once(100) == 0  # held back, not hammered

    late = queue_for(channel, exchange, "rule-ok")
    time.sleep(RETRY_SECONDS + 0.2)
    assert hermes.run_once(100) == 1
    assert [m["payload"] for m in drained(channel, late)] == [{"n": 2}]
    assert outbox_size(session) == 0
    hermes.die()


def test_message_a_queue_refuses_stays_and_backs_off(session, broker):
    exchange, channel = broker
    full = queue_for(channel, exchange, "#", **{"x-max-length": 0, "x-overflow": "reject-publish"})
    add_messages(session, "deletion-done", [{"n": 1}])
    session.commit()

    hermes = Hermes("h")
    assert hermes.run_once(100) == 0  # nacked
    assert outbox_size(session) == 1 and held_messages(session) == {"deletion-done"}
    time.sleep(RETRY_SECONDS + 0.2)
    assert hermes.run_once(100) == 0  # nacked again: the next hold is twice as long
    time.sleep(RETRY_SECONDS + 0.2)
    assert hermes.run_once(100) == 0 and outbox_size(session) == 1  # still held

    channel.queue_delete(full)
    routed = queue_for(channel, exchange, "#")
    time.sleep(RETRY_SECONDS)
    assert hermes.run_once(100) == 1
    assert [m["payload"] for m in drained(channel, routed)] == [{"n": 1}]
    assert outbox_size(session) == 0
    hermes.die()
