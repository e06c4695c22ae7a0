"""hermes over STOMP against a real broker: RabbitMQ's STOMP plugin on 127.0.0.1:61613, which
the test enables (tests/servers/rabbitmq-stomp.sh) when it is not on yet.  Every message
arrives once, a broker outage or a broken destination loses nothing, and a message that names
other services is not sent here."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
import stomp

from datamgmt.config import reset_config
from datamgmt.core.message import add_messages
from datamgmt.daemons.hermes import Hermes
from tests.integration.daemons.brokers import BROKER, outbox_size
from tests.integration.daemons.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.integration

STOMP = ("127.0.0.1", 61613)
STOMP_URL = "stomp://guest:guest@127.0.0.1:61613/"
ENABLE = Path(__file__).resolve().parents[2] / "servers" / "rabbitmq-stomp.sh"


def listening() -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(STOMP) == 0


@pytest.fixture(scope="session")
def stomp_broker() -> None:
    """RabbitMQ's STOMP plugin, enabled if it is not yet (RabbitMQ itself must run)."""
    if listening():
        return
    try:
        pika.BlockingConnection(pika.URLParameters(BROKER)).close()
    except pika.exceptions.AMQPConnectionError:
        pytest.skip("no RabbitMQ on 127.0.0.1:5672 to enable the STOMP plugin on (start rabbitmq-server)")
    enabled = subprocess.run(["bash", str(ENABLE)], capture_output=True, text=True, timeout=180)
    if enabled.returncode != 0 or not listening():
        pytest.skip(f"RabbitMQ's STOMP plugin could not be enabled: {enabled.stderr.strip()[-300:]}")


class Subscriber(stomp.ConnectionListener):
    """A STOMP consumer of one destination, collecting (headers, JSON body) of what arrives."""

    def __init__(self, destination: str) -> None:
        self.messages: list[tuple[dict, dict]] = []
        self.arrived = threading.Condition()
        self.connection = stomp.Connection12([STOMP], vhost="/", heartbeats=(0, 0))
        self.connection.set_listener("test", self)
        self.connection.connect("guest", "guest", wait=True)
        self.connection.subscribe(destination, id="test", ack="auto")

    def on_message(self, frame) -> None:
        with self.arrived:
            self.messages.append((frame.headers, json.loads(frame.body)))
            self.arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 30) -> list[tuple[dict, dict]]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.messages) < count and time.monotonic() < deadline:
                self.arrived.wait(0.2)
        time.sleep(0.3)  # anything beyond count would be a duplicate: give it time to show
        return list(self.messages)


@pytest.fixture
def destination(stomp_broker, monkeypatch) -> Iterator[str]:
    """A fresh durable queue as hermes's STOMP destination, deleted afterwards."""
    queue = f"datamgmt-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("DATAMGMT_HERMES_BROKER_URL", "")
    monkeypatch.setenv("DATAMGMT_HERMES_STOMP_URL", STOMP_URL)
    monkeypatch.setenv("DATAMGMT_HERMES_STOMP_DESTINATION", f"/queue/{queue}")
    reset_config()
    yield f"/queue/{queue}"
    connection = pika.BlockingConnection(pika.URLParameters(BROKER))
    connection.channel().queue_delete(queue)
    connection.close()
    reset_config()


def drain(hermes: Hermes) -> None:
    while hermes.run_once(200):
        pass


def test_every_message_arrives_once_oldest_first(session, destination):
    add_messages(session, "transfer-done", [{"i": i} for i in range(500)])
    session.commit()
    hermes = Hermes("h")
    started = time.monotonic()
    drain(hermes)
    elapsed = time.monotonic() - started
    hermes.die()
    assert outbox_size(session) == 0

    # Subscribed only now: the messages waited in the broker's durable queue.
    subscriber = Subscriber(destination)
    messages = subscriber.wait_for(500)
    subscriber.connection.disconnect()
    assert [body["payload"]["i"] for _, body in messages] == list(range(500))
    headers, body = messages[0]
    assert headers["event_type"] == "transfer-done" and headers["persistent"] == "true"
    assert headers["content-type"] == "application/json"
    assert set(body) == {"id", "event_type", "payload", "created_at"}
    print(f"hermes stomp: 500 messages in {elapsed:.2f} s")


def test_broker_outage_and_a_broken_destination_lose_nothing(session, destination, monkeypatch, caplog):
    add_messages(session, "rule-ok", [{"i": i} for i in range(20)])
    session.commit()
    monkeypatch.setenv("DATAMGMT_HERMES_STOMP_URL", "stomp://guest:guest@127.0.0.1:1/")
    reset_config()
    down = Hermes("down")
    with caplog.at_level(logging.WARNING, logger="datamgmt.daemons"):
        assert down.run_once(100) == 0
    assert down.idle and outbox_size(session) == 20
    assert any("cannot connect" in r.fields.get("error", "") for r in caplog.records if hasattr(r, "fields"))

    monkeypatch.setenv("DATAMGMT_HERMES_STOMP_URL", STOMP_URL)
    monkeypatch.setenv("DATAMGMT_HERMES_STOMP_DESTINATION", "/exchange/no-such-exchange-here/key")
    reset_config()
    broken = Hermes("broken")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="datamgmt.daemons"):
        assert broken.run_once(100) == 0
    assert broken.idle and outbox_size(session) == 20
    warning = next(r for r in caplog.records if "unavailable" in r.getMessage())
    assert warning.fields["service"] == "stomp" and "not_found" in warning.fields["error"]

    monkeypatch.setenv("DATAMGMT_HERMES_STOMP_DESTINATION", destination)
    reset_config()
    up = Hermes("up")
    drain(up)
    up.die()
    assert outbox_size(session) == 0
    subscriber = Subscriber(destination)
    arrived = Counter(body["payload"]["i"] for _, body in subscriber.wait_for(20))
    subscriber.connection.disconnect()
    assert arrived == Counter(range(20))


def test_stomp_gets_only_the_messages_meant_for_it(session, destination, monkeypatch):
    with webhook_receiver() as receiver:
        monkeypatch.setenv("DATAMGMT_HERMES_WEBHOOK_URL", receiver.url)
        monkeypatch.setenv("DATAMGMT_HERMES_WEBHOOK_SECRET", "secret")
        reset_config()
        add_messages(session, "to-all", [{"n": 1}])
        add_messages(session, "to-stomp", [{"n": 2}], services=["stomp"])
        add_messages(session, "to-webhook", [{"n": 3}], services=["webhook"])
        session.commit()
        hermes = Hermes("h")
        drain(hermes)
        hermes.die()
    assert outbox_size(session) == 0
    subscriber = Subscriber(destination)
    arrived = sorted(body["event_type"] for _, body in subscriber.wait_for(2))
    subscriber.connection.disconnect()
    assert arrived == ["to-all", "to-stomp"]
    assert sorted(r.message["event_type"] for r in receiver.requests) == ["to-all", "to-webhook"]
