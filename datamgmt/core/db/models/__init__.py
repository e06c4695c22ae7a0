"""The whole catalogue as SQLAlchemy 2.0 typed mappings, one module per subject.

Tables mirror Rucio's (Rucio's ``rucio/db/sqla/models.py``) so that semantics and operators'
habits carry over, with three deliberate differences: tokens are stored hashed,
queues carry lease columns (``claimed_by``/``claimed_until``) for many daemon
instances, and metadata is a typed key-value table that works on SQLite too.
Indexes exist for the daemons' hot queries; each says which query it serves.

Every model is importable from here (``from datamgmt.core.db.models import Rule``), which is
how the code base names them; importing the package registers every table on
``Base.metadata``, which the migrations and ``create_all`` rely on.
"""

from __future__ import annotations

from datamgmt.core.db.models.accounts import (
    VO,
    Account,
    AccountAttribute,
    AccountIdentity,
    Identity,
    LoginFailure,
    OIDCRequest,
    Token,
)
from datamgmt.core.db.models.base import ACCOUNT, ID, NAME, NAMING, SCOPE, Base, Leased, Timestamped
from datamgmt.core.db.models.namespace import (
    DELETED_DID_COLUMNS,
    Content,
    ContentHistory,
    DataIdentifier,
    DIDDocument,
    DIDFollowed,
    DIDKey,
    DIDKeyValue,
    DIDMeta,
    LifetimeException,
    Scope,
    UpdatedDID,
    deleted_dids,
)
from datamgmt.core.db.models.operations import ConfigOption, Heartbeat, Message, Subscription
from datamgmt.core.db.models.publishing import OpenDataDraft, PIDService, Share
from datamgmt.core.db.models.replicas import BadReplica, CollectionReplica, QuarantinedReplica, Replica
from datamgmt.core.db.models.rules import (
    AccountGlobalLimit,
    AccountLimit,
    AccountUsage,
    AccountUsageHistory,
    DatasetLock,
    Lock,
    Rule,
    RuleHistory,
    UpdatedAccountCounter,
)
from datamgmt.core.db.models.storage import (
    RSE,
    Distance,
    RSEAttribute,
    RSELimit,
    RSEProtocol,
    RSEQoSPolicy,
    RSEUsage,
    RSEUsageHistory,
    UpdatedRSECounter,
)
from datamgmt.core.db.models.transfers import (
    LocalPin,
    LocalTransfer,
    PinRelease,
    Request,
    RequestHistory,
    Source,
    TransferLimit,
)

__all__ = [
    "VO",
    "NAMING",
    "ACCOUNT",
    "ID",
    "NAME",
    "SCOPE",
    "Base",
    "Leased",
    "Timestamped",
    "Account",
    "AccountAttribute",
    "Identity",
    "AccountIdentity",
    "Token",
    "LoginFailure",
    "OIDCRequest",
    "Scope",
    "DataIdentifier",
    "Content",
    "UpdatedDID",
    "DIDMeta",
    "DIDDocument",
    "DIDKey",
    "DIDKeyValue",
    "ContentHistory",
    "DIDFollowed",
    "LifetimeException",
    "DELETED_DID_COLUMNS",
    "deleted_dids",
    "RSE",
    "RSEAttribute",
    "RSEProtocol",
    "RSELimit",
    "RSEUsage",
    "RSEUsageHistory",
    "UpdatedRSECounter",
    "Distance",
    "RSEQoSPolicy",
    "Replica",
    "BadReplica",
    "QuarantinedReplica",
    "CollectionReplica",
    "Rule",
    "RuleHistory",
    "Lock",
    "DatasetLock",
    "AccountLimit",
    "AccountGlobalLimit",
    "AccountUsage",
    "AccountUsageHistory",
    "UpdatedAccountCounter",
    "Request",
    "LocalPin",
    "LocalTransfer",
    "PinRelease",
    "Source",
    "RequestHistory",
    "TransferLimit",
    "Subscription",
    "Message",
    "Heartbeat",
    "ConfigOption",
    "PIDService",
    "Share",
    "OpenDataDraft",
]
