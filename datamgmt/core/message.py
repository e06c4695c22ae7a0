"""The messaging outbox: events written in the transaction that caused them.

Hermes delivers rows of ``messages`` later; writing them here, in the caller's
transaction, means a message exists exactly when its cause was committed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from datamgmt.core.db.models import Message
from datamgmt.core.db.types import utcnow
from datamgmt.core.outbox import join_services


def _default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def add_messages(
    session: Session,
    event_type: str,
    payloads: Iterable[Mapping[str, Any]],
    services: Iterable[str] | None = None,
) -> None:
    """Queue one message of ``event_type`` per payload, in one INSERT.

    ``services`` limits delivery to those hermes services (``amqp``, ``stomp``, ``webhook``);
    None sends it to every service hermes has (:mod:`datamgmt.core.outbox`)."""
    now = utcnow()
    targets = None if services is None else join_services(services) or None
    rows = [
        {
            "event_type": event_type,
            "payload": json.dumps(dict(p), default=_default, sort_keys=True),
            "services": targets,
            "created_at": now,
        }
        for p in payloads
    ]
    if rows:
        session.execute(insert(Message), rows)
