"""What runs the service: subscriptions, the message outbox, daemon heartbeats and run-time
configuration."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from datamgmt.core.db.constants import (
    SubscriptionState,
)
from datamgmt.core.db.models.base import ID, Base, Leased, Timestamped
from datamgmt.core.db.types import Code, new_id, utcnow


class Subscription(Timestamped, Base):
    __tablename__ = "subscriptions"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(ForeignKey("accounts.account"))
    filter: Mapped[str] = mapped_column(String(4000))
    replication_rules: Mapped[str] = mapped_column(String(4000))
    policyid: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[SubscriptionState] = mapped_column(
        Code(SubscriptionState), default=SubscriptionState.ACTIVE
    )
    last_processed: Mapped[datetime | None] = mapped_column(DateTime)
    lifetime: Mapped[datetime | None] = mapped_column(DateTime)
    comments: Mapped[str | None] = mapped_column(String(4000))
    retroactive: Mapped[bool] = mapped_column(Boolean, default=False)
    expired_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (UniqueConstraint("name", "account"),)


class Message(Leased, Base):
    """Outbox for hermes: written in the transaction that caused the event."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_type: Mapped[str] = mapped_column(String(256))
    payload: Mapped[str] = mapped_column(Text)
    services: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    __table_args__ = (Index(None, "created_at"),)


class Heartbeat(Base):
    __tablename__ = "heartbeats"
    daemon: Mapped[str] = mapped_column(String(64), primary_key=True)
    worker_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    __table_args__ = (Index(None, "daemon", "updated_at"),)


class ConfigOption(Timestamped, Base):
    """Run-time configuration set over ``/config`` (Rucio's ``configs``), read by core where Rucio reads it."""

    __tablename__ = "configs"
    section: Mapped[str] = mapped_column(String(128), primary_key=True)
    opt: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(4000))
