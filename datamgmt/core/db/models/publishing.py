"""Publishing: PID services, shares (published DIDs) and open-data drafts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from datamgmt.core.db.constants import (
    PIDServiceType,
    ShareState,
)
from datamgmt.core.db.models.base import ACCOUNT, ID, NAME, SCOPE, Base, Timestamped
from datamgmt.core.db.types import Code, new_id, utcnow


class PIDService(Timestamped, Base):
    __tablename__ = "pid_services"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_type: Mapped[PIDServiceType] = mapped_column(Code(PIDServiceType, 8))
    endpoint: Mapped[str | None] = mapped_column(String(1024))
    prefix: Mapped[str] = mapped_column(String(255))
    username: Mapped[str | None] = mapped_column(String(255))
    #: Credentials the service needs to call the registry; never returned by the API.
    secret: Mapped[str | None] = mapped_column(String(1024))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    options: Mapped[str | None] = mapped_column(String(4000))


class Share(Timestamped, Base):
    """A published DID.  Withdrawn shares stay as tombstones for OAI-PMH and PID resolution."""

    __tablename__ = "shares"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    scope: Mapped[str] = mapped_column(SCOPE)
    name: Mapped[str] = mapped_column(NAME)
    pid: Mapped[str] = mapped_column(String(255), unique=True)
    pid_service: Mapped[str] = mapped_column(ForeignKey("pid_services.name"))
    landing_url: Mapped[str] = mapped_column(String(2048))
    account: Mapped[str] = mapped_column(ACCOUNT)
    state: Mapped[ShareState] = mapped_column(Code(ShareState), default=ShareState.PUBLISHED)
    #: OAI-PMH datestamp: the last change of the record, withdrawal included.
    datestamp: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: JSON snapshot of the published record (DID type, metadata, files): see ``datamgmt.core.pid.snapshot``.
    record: Mapped[str] = mapped_column(Text)
    __table_args__ = (
        ForeignKeyConstraint(["scope", "name"], ["dids.scope", "dids.name"]),
        Index(None, "datestamp", "id"),  # OAI-PMH keyset pagination
        Index(None, "scope", "name"),
    )


class OpenDataDraft(Timestamped, Base):
    """A DID proposed for open data but not yet published (Rucio's DRAFT state).

    Published and suspended entries are shares (:class:`Share`); only a draft, which has no PID
    yet, needs a row of its own."""

    __tablename__ = "opendata_drafts"
    scope: Mapped[str] = mapped_column(SCOPE, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    account: Mapped[str] = mapped_column(ForeignKey("accounts.account"))
    __table_args__ = (
        ForeignKeyConstraint(["scope", "name"], ["dids.scope", "dids.name"], ondelete="CASCADE"),
    )
