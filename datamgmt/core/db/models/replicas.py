"""Replicas of files and collections, and the bad and quarantined ones."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from datamgmt.core.db.constants import (
    BadFilesStatus,
    DIDType,
    ReplicaState,
)
from datamgmt.core.db.models.base import ACCOUNT, NAME, SCOPE, Base, Leased, Timestamped
from datamgmt.core.db.types import Code, utcnow


class Replica(Leased, Timestamped, Base):
    __tablename__ = "replicas"
    scope: Mapped[str] = mapped_column(SCOPE, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    rse_id: Mapped[str] = mapped_column(ForeignKey("rses.id"), primary_key=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str | None] = mapped_column(String(32))
    adler32: Mapped[str | None] = mapped_column(String(8))
    #: The storage path below the protocol prefix (core/replica_path.py), unique per RSE.
    path: Mapped[str] = mapped_column(String(1024))
    state: Mapped[ReplicaState] = mapped_column(Code(ReplicaState), default=ReplicaState.AVAILABLE)
    lock_cnt: Mapped[int] = mapped_column(Integer, default=0)
    tombstone: Mapped[datetime | None] = mapped_column(DateTime)
    accessed_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: Physical deletions that failed; the reaper backs off on it.
    delete_failures: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (
        ForeignKeyConstraint(["scope", "name"], ["dids.scope", "dids.name"]),
        Index(None, "rse_id", "tombstone"),  # reaper: candidates per RSE
        Index(None, "state"),
        Index(None, "rse_id", "path", unique=True),  # one file, one replica: nothing deletes another's data
    )


class BadReplica(Base):
    __tablename__ = "bad_replicas"
    scope: Mapped[str] = mapped_column(SCOPE, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    rse_id: Mapped[str] = mapped_column(ForeignKey("rses.id"), primary_key=True)
    state: Mapped[BadFilesStatus] = mapped_column(Code(BadFilesStatus), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, primary_key=True, default=utcnow)
    reason: Mapped[str | None] = mapped_column(String(255))
    account: Mapped[str | None] = mapped_column(ACCOUNT)
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (Index(None, "state", "rse_id"),)  # necromancer, listings by state


class QuarantinedReplica(Timestamped, Base):
    """A file found on storage that no replica names (Rucio's dark data), kept for the operator."""

    __tablename__ = "quarantined_replicas"
    rse_id: Mapped[str] = mapped_column(ForeignKey("rses.id"), primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    scope: Mapped[str | None] = mapped_column(SCOPE)
    name: Mapped[str | None] = mapped_column(NAME)


class CollectionReplica(Timestamped, Base):
    """Dataset-level replica summary per RSE, maintained by abacus."""

    __tablename__ = "collection_replicas"
    scope: Mapped[str] = mapped_column(SCOPE, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    rse_id: Mapped[str] = mapped_column(ForeignKey("rses.id"), primary_key=True)
    did_type: Mapped[DIDType] = mapped_column(Code(DIDType))
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    length: Mapped[int] = mapped_column(BigInteger, default=0)
    available_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    available_replicas_cnt: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[ReplicaState] = mapped_column(Code(ReplicaState), default=ReplicaState.UNAVAILABLE)
