"""The whole catalogue as SQLAlchemy 2.0 typed mappings.

Tables mirror Rucio's (Rucio's ``rucio/db/sqla/models.py``) so that semantics and operators'
habits carry over, with three deliberate differences: tokens are stored hashed,
queues carry lease columns (``claimed_by``/``claimed_until``) for many daemon
instances, and metadata is a typed key-value table that works on SQLite too.
Indexes exist for the daemons' hot queries; each says which query it serves.
"""

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
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from datamgmt.core.db.constants import (
    AccountStatus,
    AccountType,
    BadFilesStatus,
    DIDAvailability,
    DIDReEvaluation,
    DIDType,
    IdentityType,
    LifetimeExceptionState,
    LockState,
    PIDServiceType,
    ReplicaState,
    RequestState,
    RequestType,
    RSEType,
    RuleGrouping,
    RuleNotification,
    RuleState,
    ScopeStatus,
    ShareState,
    SubscriptionState,
)
from datamgmt.core.db.types import Code, new_id, utcnow

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ACCOUNT = String(25)
SCOPE = String(25)
NAME = String(250)
ID = String(32)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Leased:
    """Lease columns: a daemon instance owns the row until ``claimed_until``."""

    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime)


# --- accounts and authentication -------------------------------------------------------------
class Account(Timestamped, Base):
    __tablename__ = "accounts"
    account: Mapped[str] = mapped_column(ACCOUNT, primary_key=True)
    account_type: Mapped[AccountType] = mapped_column(Code(AccountType))
    status: Mapped[AccountStatus] = mapped_column(Code(AccountStatus), default=AccountStatus.ACTIVE)
    email: Mapped[str | None] = mapped_column(String(255))
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)


class AccountAttribute(Timestamped, Base):
    __tablename__ = "account_attr_map"
    account: Mapped[str] = mapped_column(ForeignKey("accounts.account"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class Identity(Timestamped, Base):
    __tablename__ = "identities"
    identity: Mapped[str] = mapped_column(String(2048), primary_key=True)
    identity_type: Mapped[IdentityType] = mapped_column(Code(IdentityType, 8), primary_key=True)
    #: scrypt hash ("scrypt$n$r$p$salt$hash") for USERPASS, else NULL.
    password: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)


class AccountIdentity(Timestamped, Base):
    __tablename__ = "account_map"
    identity: Mapped[str] = mapped_column(String(2048), primary_key=True)
    identity_type: Mapped[IdentityType] = mapped_column(Code(IdentityType, 8), primary_key=True)
    account: Mapped[str] = mapped_column(ForeignKey("accounts.account"), primary_key=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (
        ForeignKeyConstraint(["identity", "identity_type"], ["identities.identity", "identities.identity_type"]),
        Index(None, "account"),
    )


class Token(Base):
    __tablename__ = "tokens"
    #: sha256 of the token; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(ForeignKey("accounts.account"))
    identity: Mapped[str | None] = mapped_column(String(2048))
    identity_type: Mapped[IdentityType | None] = mapped_column(Code(IdentityType, 8))
    expired_at: Mapped[datetime] = mapped_column(DateTime)
    ip: Mapped[str | None] = mapped_column(String(39))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    __table_args__ = (Index(None, "account"), Index(None, "expired_at"))


class LoginFailure(Base):
    """Recent failed logins of one source address or one identity (see core/throttle.py)."""

    __tablename__ = "login_failures"
    #: sha256 of ``source:<address>`` or ``identity:<name>``: a mistyped password in the username
    #: field is never stored readable.
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(DateTime)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (Index(None, "window_start"),)


class OIDCRequest(Base):
    """One browser login through the identity provider (``/auth/oidc``), from start to token fetch.

    Rucio's ``oauth_requests``. Every secret (state, the access and fetch codes) is stored as a
    sha256 hash; the row is deleted when its token is fetched, and is worthless once expired.
    """

    __tablename__ = "oidc_requests"
    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The code of the URL the client prints (``/auth/oidc_redirect?<code>``), which sends the browser on.
    access_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The code that fetches the token: the access code when polling, else the one the page shows.
    fetch_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    account: Mapped[str | None] = mapped_column(ACCOUNT)
    nonce: Mapped[str] = mapped_column(String(64))
    polling: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The identity provider's authorization URL for this request.
    redirect_url: Mapped[str] = mapped_column(String(4000))
    #: Set once the provider vouched for the user: ``sub@iss``, and the account it logs in to.
    identity: Mapped[str | None] = mapped_column(String(2048))
    expired_at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (Index(None, "expired_at"),)


# --- namespace -------------------------------------------------------------------------------
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


# --- storage ---------------------------------------------------------------------------------
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


# --- replicas --------------------------------------------------------------------------------
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


# --- rules, locks and quotas -----------------------------------------------------------------
class Rule(Leased, Timestamped, Base):
    __tablename__ = "rules"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    subscription_id: Mapped[str | None] = mapped_column(ID)
    account: Mapped[str] = mapped_column(ForeignKey("accounts.account"))
    scope: Mapped[str] = mapped_column(SCOPE)
    name: Mapped[str] = mapped_column(NAME)
    did_type: Mapped[DIDType] = mapped_column(Code(DIDType))
    state: Mapped[RuleState] = mapped_column(Code(RuleState), default=RuleState.REPLICATING)
    error: Mapped[str | None] = mapped_column(String(255))
    rse_expression: Mapped[str] = mapped_column(String(3000))
    copies: Mapped[int] = mapped_column(Integer, default=1)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    weight: Mapped[str | None] = mapped_column(String(255))
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    locks_ok_cnt: Mapped[int] = mapped_column(BigInteger, default=0)
    locks_replicating_cnt: Mapped[int] = mapped_column(BigInteger, default=0)
    locks_stuck_cnt: Mapped[int] = mapped_column(BigInteger, default=0)
    source_replica_expression: Mapped[str | None] = mapped_column(String(255))
    activity: Mapped[str] = mapped_column(String(50), default="User Subscriptions")
    grouping: Mapped[RuleGrouping] = mapped_column(Code(RuleGrouping), default=RuleGrouping.DATASET)
    notification: Mapped[RuleNotification] = mapped_column(Code(RuleNotification), default=RuleNotification.NO)
    stuck_at: Mapped[datetime | None] = mapped_column(DateTime)
    purge_replicas: Mapped[bool] = mapped_column(Boolean, default=False)
    ignore_availability: Mapped[bool] = mapped_column(Boolean, default=False)
    ignore_account_limit: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[int] = mapped_column(Integer, default=3)
    comments: Mapped[str | None] = mapped_column(String(255))
    child_rule_id: Mapped[str | None] = mapped_column(ForeignKey("rules.id"))
    split_container: Mapped[bool] = mapped_column(Boolean, default=False)
    meta: Mapped[str | None] = mapped_column(String(4000))
    eol_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (
        UniqueConstraint("scope", "name", "account", "rse_expression", "copies"),  # DuplicateRule
        Index(None, "scope", "name"),
        Index(None, "state"),  # repairer, injector
        Index(None, "expires_at"),  # cleaner
        Index(None, "child_rule_id"),
    )


class RuleHistory(Base):
    """Snapshots of rules as their state and lock counters change (Rucio's rules_history), kept
    after the rule is gone."""

    __tablename__ = "rules_history"
    history_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(ID)
    account: Mapped[str] = mapped_column(ACCOUNT)
    scope: Mapped[str] = mapped_column(SCOPE)
    name: Mapped[str] = mapped_column(NAME)
    did_type: Mapped[DIDType] = mapped_column(Code(DIDType))
    state: Mapped[RuleState] = mapped_column(Code(RuleState))
    error: Mapped[str | None] = mapped_column(String(255))
    rse_expression: Mapped[str] = mapped_column(String(3000))
    copies: Mapped[int] = mapped_column(Integer)
    locks_ok_cnt: Mapped[int] = mapped_column(BigInteger)
    locks_replicating_cnt: Mapped[int] = mapped_column(BigInteger)
    locks_stuck_cnt: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (Index(None, "id"), Index(None, "scope", "name"))


class Lock(Timestamped, Base):
    __tablename__ = "locks"
    scope: Mapped[str] = mapped_column(SCOPE, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    rule_id: Mapped[str] = mapped_column(ForeignKey("rules.id"), primary_key=True)
    rse_id: Mapped[str] = mapped_column(ForeignKey("rses.id"), primary_key=True)
    account: Mapped[str] = mapped_column(ACCOUNT)
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[LockState] = mapped_column(Code(LockState), default=LockState.REPLICATING)
    repair_cnt: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (
        Index(None, "rule_id", "state"),  # rule counters, repairer
        Index(None, "scope", "name", "rse_id"),  # locks of a replica (finisher)
    )


class DatasetLock(Timestamped, Base):
    __tablename__ = "dataset_locks"
    scope: Mapped[str] = mapped_column(SCOPE, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    rule_id: Mapped[str] = mapped_column(ForeignKey("rules.id"), primary_key=True)
    rse_id: Mapped[str] = mapped_column(ForeignKey("rses.id"), primary_key=True)
    account: Mapped[str] = mapped_column(ACCOUNT)
    state: Mapped[LockState] = mapped_column(Code(LockState), default=LockState.REPLICATING)
    length: Mapped[int | None] = mapped_column(BigInteger)
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    accessed_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (Index(None, "rule_id"), Index(None, "rse_id"))


class AccountLimit(Timestamped, Base):
    __tablename__ = "account_limits"
    account: Mapped[str] = mapped_column(ForeignKey("accounts.account"), primary_key=True)
    rse_id: Mapped[str] = mapped_column(ForeignKey("rses.id"), primary_key=True)
    bytes: Mapped[int] = mapped_column(BigInteger)  # -1 = unlimited


class AccountGlobalLimit(Timestamped, Base):
    __tablename__ = "account_glob_limits"
    account: Mapped[str] = mapped_column(ForeignKey("accounts.account"), primary_key=True)
    rse_expression: Mapped[str] = mapped_column(String(3000), primary_key=True)
    bytes: Mapped[int] = mapped_column(BigInteger)


class AccountUsage(Timestamped, Base):
    __tablename__ = "account_usage"
    account: Mapped[str] = mapped_column(ForeignKey("accounts.account"), primary_key=True)
    rse_id: Mapped[str] = mapped_column(ForeignKey("rses.id"), primary_key=True)
    files: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)


class AccountUsageHistory(Base):
    """Snapshots of ``account_usage`` rows as they change (abacus writes them)."""

    __tablename__ = "account_usage_history"
    account: Mapped[str] = mapped_column(ACCOUNT, primary_key=True)
    rse_id: Mapped[str] = mapped_column(ID, primary_key=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    files: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)


class UpdatedAccountCounter(Base):
    """Deltas to account usage, folded into ``account_usage`` by abacus."""

    __tablename__ = "updated_account_counters"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(ACCOUNT)
    rse_id: Mapped[str] = mapped_column(ID)
    files: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index(None, "account", "rse_id"),)


# --- transfers -------------------------------------------------------------------------------
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
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
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


# --- automation, messaging, liveness ---------------------------------------------------------
class Subscription(Timestamped, Base):
    __tablename__ = "subscriptions"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(ForeignKey("accounts.account"))
    filter: Mapped[str] = mapped_column(String(4000))
    replication_rules: Mapped[str] = mapped_column(String(4000))
    policyid: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[SubscriptionState] = mapped_column(Code(SubscriptionState), default=SubscriptionState.ACTIVE)
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


# --- publishing ------------------------------------------------------------------------------
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


# --- catalogue policy kept in the database (issue 16) -----------------------------------------
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


class ConfigOption(Timestamped, Base):
    """Run-time configuration set over ``/config`` (Rucio's ``configs``), read by core where Rucio reads it."""

    __tablename__ = "configs"
    section: Mapped[str] = mapped_column(String(128), primary_key=True)
    opt: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(4000))


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


class RSEQoSPolicy(Timestamped, Base):
    """The QoS policies an RSE offers (Rucio's ``rse_qos_map``)."""

    __tablename__ = "rse_qos_map"
    rse_id: Mapped[str] = mapped_column(ForeignKey("rses.id"), primary_key=True)
    qos_policy: Mapped[str] = mapped_column(String(64), primary_key=True)


class OpenDataDraft(Timestamped, Base):
    """A DID proposed for open data but not yet published (Rucio's DRAFT state).

    Published and suspended entries are shares (:class:`Share`); only a draft, which has no PID
    yet, needs a row of its own."""

    __tablename__ = "opendata_drafts"
    scope: Mapped[str] = mapped_column(SCOPE, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    account: Mapped[str] = mapped_column(ForeignKey("accounts.account"))
    __table_args__ = (ForeignKeyConstraint(["scope", "name"], ["dids.scope", "dids.name"], ondelete="CASCADE"),)


#: The columns of ``dids`` that ``deleted_dids`` keeps (Rucio's ``deleted_dids``): a removed DID
#: as it was, so ``POST /dids/resurrect`` can bring it back.  No foreign keys: the row outlives
#: its references.
DELETED_DID_COLUMNS = (
    "scope", "name", "account", "did_type", "is_open", "monotonic", "hidden", "obsolete", "complete", "is_new",
    "availability", "bytes", "length", "md5", "adler32", "guid", "events", "expired_at", "purge_replicas",
    "accessed_at", "closed_at", "deleted_at", "created_at", "updated_at",
)  # fmt: skip
deleted_dids = Table(
    "deleted_dids",
    Base.metadata,
    *(Column(column.name, column.type, primary_key=column.primary_key, nullable=column.nullable)
      for column in DataIdentifier.__table__.columns if column.name in DELETED_DID_COLUMNS),
    Index(None, "deleted_at"),
)  # fmt: skip
