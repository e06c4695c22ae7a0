"""Transfer requests, their sources and history, the local tool's copies, and transfer limits."""

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
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from datamgmt.core.db.constants import (
    DIDType,
    RequestState,
    RequestType,
)
from datamgmt.core.db.models.base import ACCOUNT, ID, NAME, SCOPE, Base, Leased, Timestamped
from datamgmt.core.db.types import Code, new_id, utcnow


class Request(Leased, Timestamped, Base):
    __tablename__ = "requests"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    request_type: Mapped[RequestType] = mapped_column(Code(RequestType), default=RequestType.TRANSFER)
    scope: Mapped[str] = mapped_column(SCOPE)
    name: Mapped[str] = mapped_column(NAME)
    did_type: Mapped[DIDType] = mapped_column(Code(DIDType), default=DIDType.FILE)
    dest_rse_id: Mapped[str] = mapped_column(ForeignKey("rses.id"))
    source_rse_id: Mapped[str | None] = mapped_column(ID)
    attributes: Mapped[str | None] = mapped_column(String(4000))
    state: Mapped[RequestState] = mapped_column(Code(RequestState), default=RequestState.QUEUED)
    external_id: Mapped[str | None] = mapped_column(String(64))
    #: The transfer tool's key of the job (FTS: the sid its id derives from), so a request whose
    #: submission went unanswered is only ever sent again under the same job id.
    external_key: Mapped[str | None] = mapped_column(String(64))
    external_host: Mapped[str | None] = mapped_column(String(255))
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    err_msg: Mapped[str | None] = mapped_column(String(4000))
    previous_attempt_id: Mapped[str | None] = mapped_column(ID)
    rule_id: Mapped[str | None] = mapped_column(ID)
    activity: Mapped[str] = mapped_column(String(50), default="User Subscriptions")
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    md5: Mapped[str | None] = mapped_column(String(32))
    adler32: Mapped[str | None] = mapped_column(String(8))
    dest_url: Mapped[str | None] = mapped_column(String(2048))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    transferred_at: Mapped[datetime | None] = mapped_column(DateTime)
    account: Mapped[str | None] = mapped_column(ACCOUNT)
    priority: Mapped[int] = mapped_column(Integer, default=3)
    transfertool: Mapped[str | None] = mapped_column(String(64))
    #: The tool's state of a SUBMITTED transfer as last polled (FTS: STAGING, ACTIVE, ARCHIVING ...).
    external_state: Mapped[str | None] = mapped_column(String(32))
    #: When the tool began and finished staging the source from tape (Rucio's columns).
    staging_started_at: Mapped[datetime | None] = mapped_column(DateTime)
    staging_finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: When the tool began watching the copy on a tape destination, and saw it on tape.
    archive_started_at: Mapped[datetime | None] = mapped_column(DateTime)
    archive_finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: Earliest time the request may be (re)submitted: retry back-off.
    not_before: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (
        Index(None, "state", "dest_rse_id"),  # submitter, throttler
        Index(None, "scope", "name", "dest_rse_id", "request_type"),
        Index(None, "rule_id"),
        Index(None, "external_id"),
    )


class LocalTransfer(Leased, Timestamped, Base):
    """A transfer of the ``local`` tool: in the catalogue, so that a poller in another process
    sees it, and a copy whose process died (its lease ran out) is taken over and run again.
    Hops of one multihop path share ``chain`` (the first hop's id) and run in order as one unit."""

    __tablename__ = "local_transfers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64))
    chain: Mapped[str] = mapped_column(String(64))
    hop_index: Mapped[int] = mapped_column(Integer, default=0)
    destination: Mapped[str] = mapped_column(String(2048))
    #: The transfer as the tool needs it to copy (JSON: sources, checksums, verify mode, ...).
    spec: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="QUEUED")
    canceled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Copies started: more than one means a worker died (or lost its lease) mid-copy.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(String(4000))
    transferred_bytes: Mapped[int | None] = mapped_column(BigInteger)
    source_url: Mapped[str | None] = mapped_column(String(2048))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: The end of a tape phase (STAGING, ARCHIVING) nobody holds a lease for: it advances by time.
    phase_until: Mapped[datetime | None] = mapped_column(DateTime)
    staging_started_at: Mapped[datetime | None] = mapped_column(DateTime)
    staging_finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    archive_started_at: Mapped[datetime | None] = mapped_column(DateTime)
    archive_finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (Index(None, "chain"), Index(None, "state", "claimed_until"))


class LocalPin(Base):
    """The ``local`` tool's "staged" marker: a file on a tape RSE served by local storage is
    online (readable without a recall) until ``pinned_until``.  Releasing the pin drops the row;
    the file itself, the tape copy, is never touched."""

    __tablename__ = "local_pins"
    url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    pinned_until: Mapped[datetime] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class PinRelease(Leased, Timestamped, Base):
    """A pin to give back: the last staging lock on a file of a ``staging_required`` RSE went
    (its rule removed or expired), so the conveyor-finisher asks the tool that staged it to
    release it (the local tool drops its marker; FTS cancels a recall still running)."""

    __tablename__ = "pin_releases"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    request_id: Mapped[str] = mapped_column(ID)
    url: Mapped[str | None] = mapped_column(String(2048))
    transfertool: Mapped[str | None] = mapped_column(String(64))
    external_host: Mapped[str | None] = mapped_column(String(255))
    external_id: Mapped[str | None] = mapped_column(String(64))
    __table_args__ = (Index(None, "claimed_until"),)


class Source(Timestamped, Base):
    """Candidate sources of a request; a replica referenced here is never reaped."""

    __tablename__ = "sources"
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True)
    rse_id: Mapped[str] = mapped_column(ForeignKey("rses.id"), primary_key=True)
    scope: Mapped[str] = mapped_column(SCOPE, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    dest_rse_id: Mapped[str] = mapped_column(ID)
    url: Mapped[str | None] = mapped_column(String(2048))
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    ranking: Mapped[int] = mapped_column(Integer, default=0)
    is_using: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (Index(None, "scope", "name", "rse_id"),)


class RequestHistory(Base):
    """One row per finished transfer attempt (Rucio's ``requests_history``), kept after the
    request itself is retried, failed or deleted, so an operator can tell why a copy failed
    without reading the live queue.  Written set-based by ``core/request_history.py`` where the
    conveyor's outcomes are applied."""

    __tablename__ = "requests_history"
    #: Surrogate key: a request has one row per attempt.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    request_id: Mapped[str] = mapped_column(ID)
    request_type: Mapped[RequestType] = mapped_column(Code(RequestType), default=RequestType.TRANSFER)
    scope: Mapped[str] = mapped_column(SCOPE)
    name: Mapped[str] = mapped_column(NAME)
    dest_rse_id: Mapped[str] = mapped_column(ID)
    source_rse_id: Mapped[str | None] = mapped_column(ID)
    #: The attempt's outcome: DONE, FAILED, LOST, NO_SOURCES, SUBMISSION_FAILED, MISMATCH_SCHEME.
    state: Mapped[RequestState] = mapped_column(Code(RequestState))
    external_id: Mapped[str | None] = mapped_column(String(64))
    external_host: Mapped[str | None] = mapped_column(String(255))
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    err_msg: Mapped[str | None] = mapped_column(String(4000))
    rule_id: Mapped[str | None] = mapped_column(ID)
    activity: Mapped[str | None] = mapped_column(String(50))
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    dest_url: Mapped[str | None] = mapped_column(String(2048))
    transfertool: Mapped[str | None] = mapped_column(String(64))
    account: Mapped[str | None] = mapped_column(ACCOUNT)
    priority: Mapped[int | None] = mapped_column(Integer)
    #: When the request was created (Rucio's ``requested_at``).
    requested_at: Mapped[datetime | None] = mapped_column(DateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime)
    transferred_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: The attempt's tape phases: staging its source, and archiving at its destination.
    staging_started_at: Mapped[datetime | None] = mapped_column(DateTime)
    staging_finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    archive_started_at: Mapped[datetime | None] = mapped_column(DateTime)
    archive_finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: When the outcome was recorded.
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    __table_args__ = (
        Index(None, "scope", "name", "dest_rse_id"),  # history by DID
        Index(None, "rule_id"),  # rule show
        Index(None, "created_at"),  # transfers list, metrics windows
    )


class TransferLimit(Timestamped, Base):
    """A cap on active transfers towards (or from) the RSEs of an expression, per activity or
    for all (Rucio's ``transfer_limits``); the conveyor's throttler honours ``max_transfers``."""

    __tablename__ = "transfer_limits"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    rse_expression: Mapped[str] = mapped_column(String(3000))
    activity: Mapped[str | None] = mapped_column(String(50))
    direction: Mapped[str] = mapped_column(String(11), default="DESTINATION")
    max_transfers: Mapped[int | None] = mapped_column(BigInteger)
    volume: Mapped[int | None] = mapped_column(BigInteger)
    deadline: Mapped[int | None] = mapped_column(BigInteger)
    strategy: Mapped[str | None] = mapped_column(String(25))
    transfers: Mapped[int | None] = mapped_column(BigInteger)
    waitings: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (UniqueConstraint("rse_expression", "activity", "direction"),)
