"""Rules, their locks, and the account limits and usage they are charged against."""

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
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from datamgmt.core.db.constants import (
    DIDType,
    LockState,
    RuleGrouping,
    RuleNotification,
    RuleState,
)
from datamgmt.core.db.models.base import ACCOUNT, ID, NAME, SCOPE, Base, Leased, Timestamped
from datamgmt.core.db.types import Code, new_id


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
    notification: Mapped[RuleNotification] = mapped_column(
        Code(RuleNotification), default=RuleNotification.NO
    )
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
