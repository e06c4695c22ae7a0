"""hermes's webhooks against a real HTTP server on 127.0.0.1: signed JSON POSTs, each message
accepted exactly once, nothing lost when the receiver fails or refuses, and each message's
``services`` honoured (with the real RabbitMQ as the second service)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from datamgmt.config import reset_config
from datamgmt.core.db.models import Message
from datamgmt.core.message import add_messages
from datamgmt.daemons.hermes import Hermes
from datamgmt.exceptions import ConfigurationError
from tests.integration.daemons.brokers import BROKER, outbox_size, received
from tests.integration.daemons.webhook_receiver import Receiver, webhook_receiver

pytestmark = pytest.mark.integration

SECRET = "s3cret-for-tests"
RETRY_SECONDS = 1


@pytest.fixture
def receiver(monkeypatch) -> Iterator[Receiver]:
    """A live receiver, and hermes configured to deliver only to it."""
    with webhook_receiver() as live:
        monkeypatch.setenv("DATAMGMT_HERMES_BROKER_URL", "")
        monkeypatch.setenv("DATAMGMT_HERMES_WEBHOOK_URL", live.url)
        monkeypatch.setenv("DATAMGMT_HERMES_WEBHOOK_SECRET", SECRET)
        monkeypatch.setenv("DATAMGMT_HERMES_RETRY_SECONDS", str(RETRY_SECONDS))
        reset_config()
        yield live
    reset_config()


def drain(hermes: Hermes, batch: int = 100) -> None:
    while hermes.run_once(batch):
        pass


def outbox_rows(session) -> dict[int, tuple[str | None, bool]]:
    """id → (services, held back)."""
    rows = {r.id: (r.services, r.claimed_until is not None) for r in session.scalars(select(Message))}
    session.rollback()
    return rows


def test_every_message_is_posted_once_signed(session, receiver):
    add_messages(session, "transfer-done", [{"i": i} for i in range(120)])
    session.commit()
    hermes = Hermes("h")
    drain(hermes, 50)
    hermes.die()

    assert outbox_size(session) == 0
    assert sorted(r.message["payload"]["i"] for r in receiver.requests) == list(range(120))
    assert set(receiver.accepted().values()) == {1}
    for request in receiver.requests:
        assert request.path == "/hooks/datamgmt"
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["X-Datamgmt-Event"] == "transfer-done"
        assert request.headers["X-Datamgmt-Message-Id"] == str(request.message["id"])
        expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request.headers["X-Datamgmt-Signature"], expected)
        forged = "sha256=" + hmac.new(b"another secret", request.body, hashlib.sha256).hexdigest()
        assert request.headers["X-Datamgmt-Signature"] != forged


def test_receiver_failures_are_retried_without_loss_or_duplicates(session, receiver, caplog):
    add_messages(session, "rule-ok", [{"i": i} for i in range(10)])
    session.commit()
    receiver.next_statuses = [200, 200, 200, 503]  # the receiver falls over at the 4th message
    hermes = Hermes("h")
    with caplog.at_level(logging.WARNING, logger="datamgmt.daemons"):
        assert hermes.run_once(100) == 3
    assert hermes.idle  # backs off after a failure
    assert outbox_size(session) == 7
    assert not any(held for _, held in outbox_rows(session).values())  # given back at once, not held
    warning = next(r for r in caplog.records if "unavailable" in r.getMessage())
    assert warning.fields["service"] == "webhook" and "HTTP 503" in warning.fields["error"]

    receiver.next_statuses = [500, 429]
    assert hermes.run_once(100) == 0
    assert hermes.run_once(100) == 0
    drain(hermes)
    hermes.die()
    assert outbox_size(session) == 0
    assert (
        receiver.accepted() == Counter({m: 1 for m in receiver.accepted()}) and len(receiver.accepted()) == 10
    )


def test_unreachable_receiver_keeps_every_message(session, receiver, monkeypatch):
    add_messages(session, "rule-ok", [{"i": i} for i in range(5)])
    session.commit()
    monkeypatch.setenv("DATAMGMT_HERMES_WEBHOOK_URL", "http://127.0.0.1:1/closed")
    reset_config()
    down = Hermes("down")
    assert down.run_once(100) == 0 and down.idle
    assert outbox_size(session) == 5
    monkeypatch.setenv("DATAMGMT_HERMES_WEBHOOK_URL", receiver.url)
    reset_config()
    drain(Hermes("up"))
    assert outbox_size(session) == 0 and len(receiver.accepted()) == 5


@pytest.mark.parametrize("status", [400, 307])
def test_a_refused_message_is_held_back_and_the_rest_go_on(session, receiver, caplog, status):
    """A 4xx, or a redirect (never followed), refuses that one message: it waits with back-off."""
    add_messages(session, "rule-ok", [{"i": i} for i in range(3)])
    session.commit()
    first = min(outbox_rows(session))
    receiver.status_for_id[first] = status
    hermes = Hermes("h")
    with caplog.at_level(logging.WARNING, logger="datamgmt.daemons"):
        assert hermes.run_once(100) == 2
    assert outbox_rows(session) == {first: (None, True)}
    warning = next(r for r in caplog.records if "did not take" in r.getMessage())
    assert warning.fields["message"] == first and f"HTTP {status}" in warning.fields["error"]
    assert warning.fields["url"] == receiver.url
    assert hermes.run_once(100) == 0  # held back, not hammered
    assert all(r.path == "/hooks/datamgmt" for r in receiver.requests)  # the redirect was not followed

    del receiver.status_for_id[first]
    time.sleep(RETRY_SECONDS + 0.2)
    assert hermes.run_once(100) == 1
    hermes.die()
    assert outbox_size(session) == 0 and receiver.accepted() == Counter(
        {first: 1, first + 1: 1, first + 2: 1}
    )


def test_each_message_goes_to_the_services_it_names(session, receiver, consumer, monkeypatch):
    """webhook and AMQP together: ``services`` picks among them, NULL means both, and a service
    nobody configured leaves its message waiting."""
    _, channel, queue = consumer
    monkeypatch.setenv("DATAMGMT_HERMES_WEBHOOK_URL", receiver.url)  # the consumer fixture set the broker
    reset_config()
    add_messages(session, "to-both", [{"n": 1}])
    add_messages(session, "to-webhook", [{"n": 2}], services=["webhook"])
    add_messages(session, "to-amqp", [{"n": 3}], services=["amqp"])
    add_messages(session, "to-stomp", [{"n": 4}], services=["stomp"])  # not configured here
    session.commit()
    hermes = Hermes("h")
    drain(hermes)
    hermes.die()

    assert sorted(r.message["event_type"] for r in receiver.requests) == ["to-both", "to-webhook"]
    assert sorted(m["event_type"] for m in received(channel, queue)) == ["to-amqp", "to-both"]
    assert [services for services, _ in outbox_rows(session).values()] == ["stomp"]


def test_a_service_that_took_a_message_is_not_sent_it_again(session, receiver, consumer, monkeypatch):
    """The webhook takes a message while the AMQP broker is down: the message then owes only
    AMQP, and once the broker is back it arrives there, with the webhook not called again."""
    _, channel, queue = consumer
    monkeypatch.setenv("DATAMGMT_HERMES_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("DATAMGMT_HERMES_BROKER_URL", "amqp://guest:guest@127.0.0.1:1/")
    reset_config()
    add_messages(session, "rule-ok", [{"i": i} for i in range(4)])
    session.commit()
    down = Hermes("down")
    assert down.run_once(100) == 0 and down.idle
    assert {services for services, _ in outbox_rows(session).values()} == {"amqp"}
    assert len(receiver.accepted()) == 4

    monkeypatch.setenv("DATAMGMT_HERMES_BROKER_URL", BROKER)
    reset_config()
    up = Hermes("up")
    drain(up)
    up.die()
    assert outbox_size(session) == 0
    assert sorted(m["payload"]["i"] for m in received(channel, queue)) == [0, 1, 2, 3]
    assert len(receiver.requests) == 4 and set(receiver.accepted().values()) == {1}


def test_webhook_configuration_errors_are_clear(db, monkeypatch):
    monkeypatch.setenv("DATAMGMT_HERMES_BROKER_URL", "")
    monkeypatch.setenv("DATAMGMT_HERMES_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("DATAMGMT_HERMES_WEBHOOK_SECRET", "")
    reset_config()
    with pytest.raises(ConfigurationError, match="webhook_secret"):
        Hermes("h")
    monkeypatch.setenv("DATAMGMT_HERMES_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("DATAMGMT_HERMES_WEBHOOK_URL", "ftp://127.0.0.1/hook")
    reset_config()
    with pytest.raises(ConfigurationError, match="webhook_url"):
        Hermes("h")
    reset_config()
