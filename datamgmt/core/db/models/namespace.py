"""The namespace: scopes, DIDs, their contents, metadata, followers, lifetime exceptions, and the DIDs
that were removed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from datamgmt.core.db.constants import (
    DIDAvailability,
    DIDReEvaluation,
    DIDType,
    LifetimeExceptionState,
    ScopeStatus,
)
from datamgmt.core.db.models.base import ID, NAME, SCOPE, Base, Leased, Timestamped
from datamgmt.core.db.types import Code, utcnow


class Scope(Timestamped, Base):
    __tablename__ = "scopes"
    scope: Mapped[str] = mapped_column(SCOPE, primary_key=True)
    account: Mapped[str] = mapped_column(ForeignKey("accounts.account"))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[ScopeStatus] = mapped_column(Code(ScopeStatus), default=ScopeStatus.OPEN)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (Index(None, "account"),)


class DataIdentifier(Timestamped, Base):
    __tablename__ = "dids"
    scope: Mapped[str] = mapped_column(ForeignKey("scopes.scope"), primary_key=True)
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    account: Mapped[str] = mapped_column(ForeignKey("accounts.account"))
    did_type: Mapped[DIDType] = mapped_column(Code(DIDType))
    is_open: Mapped[bool | None] = mapped_column(Boolean)
    monotonic: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    obsolete: Mapped[bool] = mapped_column(Boolean, default=False)
    complete: Mapped[bool | None] = mapped_column(Boolean)
    #: New DIDs not yet seen by the transmogrifier.
    is_new: Mapped[bool | None] = mapped_column(Boolean, default=True)
    availability: Mapped[DIDAvailability] = mapped_column(
        Code(DIDAvailability), default=DIDAvailability.AVAILABLE
    )
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    length: Mapped[int | None] = mapped_column(BigInteger)
    md5: Mapped[str | None] = mapped_column(String(32))
    adler32: Mapped[str | None] = mapped_column(String(8))
    guid: Mapped[str | None] = mapped_column(ID)
    events: Mapped[int | None] = mapped_column(BigInteger)
    expired_at: Mapped[datetime | None] = mapped_column(DateTime)
    purge_replicas: Mapped[bool] = mapped_column(Boolean, default=True)
    accessed_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (
        Index(None, "expired_at"),  # undertaker: expired collections
        Index(None, "is_new"),  # transmogrifier: new DIDs
        Index(None, "account"),
        Index(None, "guid"),  # GET /dids/<guid>/guid
    )


class Content(Timestamped, Base):
    __tablename__ = "contents"
    scope: Mapped[str] = mapped_column(SCOPE, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    child_scope: Mapped[str] = mapped_column(SCOPE, primary_key=True)
    child_name: Mapped[str] = mapped_column(NAME, primary_key=True)
    did_type: Mapped[DIDType] = mapped_column(Code(DIDType))
    child_type: Mapped[DIDType] = mapped_column(Code(DIDType))
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    adler32: Mapped[str | None] = mapped_column(String(8))
    md5: Mapped[str | None] = mapped_column(String(32))
    guid: Mapped[str | None] = mapped_column(ID)
    events: Mapped[int | None] = mapped_column(BigInteger)
    #: True while a newly attached child waits for the judge-evaluator.
    rule_evaluation: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (
        ForeignKeyConstraint(["scope", "name"], ["dids.scope", "dids.name"]),
        ForeignKeyConstraint(["child_scope", "child_name"], ["dids.scope", "dids.name"]),
        Index(None, "child_scope", "child_name", "scope", "name"),  # parents of a DID
    )


class UpdatedDID(Leased, Base):
    """The judge-evaluator's queue: collections whose content changed under rules."""

    __tablename__ = "updated_dids"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(SCOPE)
    name: Mapped[str] = mapped_column(NAME)
    rule_evaluation_action: Mapped[DIDReEvaluation] = mapped_column(Code(DIDReEvaluation))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    __table_args__ = (Index(None, "scope", "name"), Index(None, "claimed_until"))


class DIDMeta(Timestamped, Base):
    """Typed key-value metadata: one value column per type keeps comparisons indexable."""

    __tablename__ = "did_meta"
    scope: Mapped[str] = mapped_column(SCOPE, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value_type: Mapped[str] = mapped_column(String(8))  # str, int, float, bool, date, json (lists, objects)
    value_str: Mapped[str | None] = mapped_column(String(4000))
    value_num: Mapped[float | None] = mapped_column(Float)
    value_date: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (
        ForeignKeyConstraint(["scope", "name"], ["dids.scope", "dids.name"], ondelete="CASCADE"),
        Index(None, "key", "value_str"),
        Index(None, "key", "value_num"),
    )


class DIDDocument(Timestamped, Base):
    """Whole JSON or RDF documents attached to a DID, one per format."""

    __tablename__ = "did_documents"
    scope: Mapped[str] = mapped_column(SCOPE, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    format: Mapped[str] = mapped_column(String(16), primary_key=True)  # json, turtle, rdfxml
    content: Mapped[str] = mapped_column(Text)
    __table_args__ = (
        ForeignKeyConstraint(["scope", "name"], ["dids.scope", "dids.name"], ondelete="CASCADE"),
    )


class DIDKey(Timestamped, Base):
    """A metadata convention: a key, what it applies to, and the values it allows (Rucio's ``did_keys``)."""

    __tablename__ = "did_keys"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    is_enum: Mapped[bool] = mapped_column(Boolean, default=False)
    key_type: Mapped[str] = mapped_column(String(16))  # ALL, COLLECTION, FILE, DERIVED, DATASET, CONTAINER
    value_type: Mapped[str | None] = mapped_column(String(255))
    value_regexp: Mapped[str | None] = mapped_column(String(255))


class DIDKeyValue(Timestamped, Base):
    """An allowed value of an enumerated metadata key (Rucio's ``did_key_map``)."""

    __tablename__ = "did_key_map"
    key: Mapped[str] = mapped_column(ForeignKey("did_keys.key"), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)


class ContentHistory(Base):
    """Attachments that were undone, kept for ``GET /dids/<did>/dids/history`` (Rucio's ``contents_history``)."""

    __tablename__ = "contents_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(SCOPE)
    name: Mapped[str] = mapped_column(NAME)
    child_scope: Mapped[str] = mapped_column(SCOPE)
    child_name: Mapped[str] = mapped_column(NAME)
    did_type: Mapped[DIDType] = mapped_column(Code(DIDType))
    child_type: Mapped[DIDType] = mapped_column(Code(DIDType))
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    adler32: Mapped[str | None] = mapped_column(String(8))
    md5: Mapped[str | None] = mapped_column(String(32))
    #: When the attachment was made, and when it was undone.
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    deleted_at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (Index(None, "scope", "name"),)


class DIDFollowed(Timestamped, Base):
    """Accounts that follow a DID (Rucio's ``dids_followed``)."""

    __tablename__ = "dids_followed"
    scope: Mapped[str] = mapped_column(SCOPE, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    account: Mapped[str] = mapped_column(ForeignKey("accounts.account"), primary_key=True)
    did_type: Mapped[DIDType] = mapped_column(Code(DIDType))
    __table_args__ = (
        ForeignKeyConstraint(["scope", "name"], ["dids.scope", "dids.name"], ondelete="CASCADE"),
        Index(None, "account"),
    )


class LifetimeException(Timestamped, Base):
    """A request to keep DIDs past their lifetime; one ``id`` groups the DIDs of one request."""

    __tablename__ = "lifetime_except"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    scope: Mapped[str] = mapped_column(SCOPE, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    did_type: Mapped[DIDType] = mapped_column(Code(DIDType))
    account: Mapped[str] = mapped_column(ForeignKey("accounts.account"))
    pattern: Mapped[str | None] = mapped_column(String(255))
    comments: Mapped[str | None] = mapped_column(String(4000))
    state: Mapped[LifetimeExceptionState] = mapped_column(Code(LifetimeExceptionState))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (Index(None, "scope", "name", "state"),)  # undertaker: approved exceptions of a DID


#: The columns of ``dids`` that ``deleted_dids`` keeps (Rucio's ``deleted_dids``): a removed DID
#: as it was, so ``POST /dids/resurrect`` can bring it back.  No foreign keys: the row outlives
#: its references.
DELETED_DID_COLUMNS = (
    "scope",
    "name",
    "account",
    "did_type",
    "is_open",
    "monotonic",
    "hidden",
    "obsolete",
    "complete",
    "is_new",
    "availability",
    "bytes",
    "length",
    "md5",
    "adler32",
    "guid",
    "events",
    "expired_at",
    "purge_replicas",
    "accessed_at",
    "closed_at",
    "deleted_at",
    "created_at",
    "updated_at",
)
deleted_dids = Table(
    "deleted_dids",
    Base.metadata,
    *(
        Column(column.name, column.type, primary_key=column.primary_key, nullable=column.nullable)
        for column in DataIdentifier.__table__.columns
        if column.name in DELETED_DID_COLUMNS
    ),
    Index(None, "deleted_at"),
)
