"""RSEs: their attributes, protocols, limits, usage, QoS policies and the distances between them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from datamgmt.core.db.constants import (
    RSEType,
)
from datamgmt.core.db.models.base import ID, Base, Timestamped
from datamgmt.core.db.types import Code, new_id, utcnow


class RSE(Timestamped, Base):
    __tablename__ = "rses"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    rse: Mapped[str] = mapped_column(String(255), unique=True)
    rse_type: Mapped[RSEType] = mapped_column(Code(RSEType, 4), default=RSEType.DISK)
    deterministic: Mapped[bool] = mapped_column(Boolean, default=True)
    volatile: Mapped[bool] = mapped_column(Boolean, default=False)
    staging_area: Mapped[bool] = mapped_column(Boolean, default=False)
    availability_read: Mapped[bool] = mapped_column(Boolean, default=True)
    availability_write: Mapped[bool] = mapped_column(Boolean, default=True)
    availability_delete: Mapped[bool] = mapped_column(Boolean, default=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)


class RSEAttribute(Timestamped, Base):
    __tablename__ = "rse_attr_map"
    rse_id: Mapped[str] = mapped_column(ForeignKey("rses.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: Booleans are stored as 'true'/'false', as Rucio's BooleanString does.
    value: Mapped[str] = mapped_column(String(255))
    __table_args__ = (Index(None, "key", "value"),)


class RSEProtocol(Timestamped, Base):
    __tablename__ = "rse_protocols"
    rse_id: Mapped[str] = mapped_column(ForeignKey("rses.id"), primary_key=True)
    scheme: Mapped[str] = mapped_column(String(255), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255), primary_key=True, default="")
    port: Mapped[int] = mapped_column(Integer, primary_key=True, default=0)
    prefix: Mapped[str | None] = mapped_column(String(1024))
    impl: Mapped[str] = mapped_column(String(255))
    read_lan: Mapped[int] = mapped_column(Integer, default=0)
    write_lan: Mapped[int] = mapped_column(Integer, default=0)
    delete_lan: Mapped[int] = mapped_column(Integer, default=0)
    read_wan: Mapped[int] = mapped_column(Integer, default=0)
    write_wan: Mapped[int] = mapped_column(Integer, default=0)
    delete_wan: Mapped[int] = mapped_column(Integer, default=0)
    third_party_copy_read: Mapped[int] = mapped_column(Integer, default=0)
    third_party_copy_write: Mapped[int] = mapped_column(Integer, default=0)
    extended_attributes: Mapped[str | None] = mapped_column(String(4000))


class RSELimit(Timestamped, Base):
    __tablename__ = "rse_limits"
    rse_id: Mapped[str] = mapped_column(ForeignKey("rses.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class RSEUsage(Base):
    __tablename__ = "rse_usage"
    rse_id: Mapped[str] = mapped_column(ForeignKey("rses.id"), primary_key=True)
    source: Mapped[str] = mapped_column(String(255), primary_key=True)
    used: Mapped[int] = mapped_column(BigInteger, default=0)
    free: Mapped[int | None] = mapped_column(BigInteger)
    files: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class RSEUsageHistory(Base):
    """Snapshots of ``rse_usage`` rows as they change (abacus writes them)."""

    __tablename__ = "rse_usage_history"
    rse_id: Mapped[str] = mapped_column(ID, primary_key=True)
    source: Mapped[str] = mapped_column(String(255), primary_key=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    used: Mapped[int] = mapped_column(BigInteger)
    free: Mapped[int | None] = mapped_column(BigInteger)
    files: Mapped[int | None] = mapped_column(BigInteger)


class UpdatedRSECounter(Base):
    """Deltas to the ``rucio`` usage of an RSE, folded in by abacus."""

    __tablename__ = "updated_rse_counters"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rse_id: Mapped[str] = mapped_column(ID)
    files: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index(None, "rse_id"),)


class Distance(Timestamped, Base):
    __tablename__ = "distances"
    src_rse_id: Mapped[str] = mapped_column(ForeignKey("rses.id"), primary_key=True)
    dest_rse_id: Mapped[str] = mapped_column(ForeignKey("rses.id"), primary_key=True)
    distance: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (Index(None, "dest_rse_id"),)


class RSEQoSPolicy(Timestamped, Base):
    """The QoS policies an RSE offers (Rucio's ``rse_qos_map``)."""

    __tablename__ = "rse_qos_map"
    rse_id: Mapped[str] = mapped_column(ForeignKey("rses.id"), primary_key=True)
    qos_policy: Mapped[str] = mapped_column(String(64), primary_key=True)
