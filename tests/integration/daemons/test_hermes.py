"""hermes against a real RabbitMQ on 127.0.0.1:5672: every message arrives once, an outage loses nothing."""

from __future__ import annotations

import os
from collections import Counter

import pytest
from sqlalchemy import func, select

from datamgmt.config import reset_config
from datamgmt.core.db.models import Message
from datamgmt.core.message import add_messages
from datamgmt.daemons.hermes import Hermes
from datamgmt.exceptions import ConfigurationError
from tests.integration.daemons.brokers import BROKER, outbox_size, received
from tests.integration.daemons.catalogue import run_daemon

pytestmark = pytest.mark.integration

ON_POSTGRESQL = os.environ.get("DATAMGMT_TEST_DB_URL", "").startswith("postgresql")


def fill_outbox(session, count: int) -> None:
    add_messages(session, "deletion-done", [{"name": f"f{i}", "i": i} for i in range(count)])
    session.commit()


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
    assert (
        session.scalar(select(func.count()).where(Message.claimed_by.is_not(None))) == 0
    )  # released, not held
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


@pytest.mark.skipif(
    not ON_POSTGRESQL, reason="DATAMGMT_TEST_DB_URL is unset: concurrent instances need PostgreSQL"
)
def test_two_instances_deliver_each_message_once(db, session, consumer):
    _, channel, queue = consumer
    fill_outbox(session, 3000)
    workers = [run_daemon(db, "hermes", "--run-once", "--batch-size", "100") for _ in range(2)]
    for worker in workers:
        _, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr
    assert Counter(m["payload"]["i"] for m in received(channel, queue)) == Counter(range(3000))
    assert outbox_size(session) == 0
