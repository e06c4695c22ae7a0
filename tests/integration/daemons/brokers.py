"""What the hermes tests share: the real RabbitMQ's address, reading what reached a queue,
and the outbox's size."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from datamgmt.core.db.models import Message

BROKER = "amqp://guest:guest@127.0.0.1:5672/"


def received(channel, queue: str) -> list[dict]:
    """Drain ``queue``: each message's JSON with the routing key it came by."""
    bodies = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return bodies
        assert properties.delivery_mode == 2 and properties.content_type == "application/json"
        bodies.append({**json.loads(body), "routing_key": method.routing_key})


def outbox_size(session) -> int:
    size = session.scalar(select(func.count()).select_from(Message))
    session.rollback()
    return size
