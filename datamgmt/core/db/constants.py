"""Enumerations of the catalogue.

Each member's value is the short code stored in the database (Rucio's codes, so
dumps and operators' SQL read the same); the API shows the member's name.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Self


class CodedEnum(enum.Enum):
    """An enum stored as its short code and shown by its name."""

    @classmethod
    def parse(cls, value: str | CodedEnum) -> Self:
        """Accept a member, its name (any case) or its code, as clients send all three."""
        if isinstance(value, cls):
            return value
        text = str(value)
        try:
            return cls[text.upper()]
        except KeyError:
            pass
        for member in cls:
            if member.value == text:
                return member
        from datamgmt.exceptions import InputValidationError

        names = ", ".join(m.name for m in cls)
        raise InputValidationError(f"{cls.__name__} must be one of {names}, not {text[:40]!r}")


class DIDType(CodedEnum):
    FILE = "F"
    DATASET = "D"
    CONTAINER = "C"
    DELETED_FILE = "X"
    DELETED_DATASET = "Y"
    DELETED_CONTAINER = "Z"


class DIDAvailability(CodedEnum):
    AVAILABLE = "A"
    LOST = "L"
    DELETED = "D"


class DIDReEvaluation(CodedEnum):
    ATTACH = "A"
    DETACH = "D"


class ReplicaState(CodedEnum):
    AVAILABLE = "A"
    UNAVAILABLE = "U"
    COPYING = "C"
    BEING_DELETED = "B"
    BAD = "D"
    TEMPORARY_UNAVAILABLE = "T"


class RuleState(CodedEnum):
    REPLICATING = "R"
    OK = "O"
    STUCK = "S"
    SUSPENDED = "U"
    WAITING_APPROVAL = "W"
    INJECT = "I"


class LockState(CodedEnum):
    REPLICATING = "R"
    OK = "O"
    STUCK = "S"


class RuleGrouping(CodedEnum):
    ALL = "A"
    DATASET = "D"
    NONE = "N"


class RuleNotification(CodedEnum):
    YES = "Y"
    NO = "N"
    CLOSE = "C"
    PROGRESS = "P"


class RequestState(CodedEnum):
    QUEUED = "Q"
    SUBMITTING = "G"
    SUBMITTED = "S"
    FAILED = "F"
    DONE = "D"
    LOST = "L"
    NO_SOURCES = "N"
    ONLY_TAPE_SOURCES = "O"
    SUBMISSION_FAILED = "A"
    MISMATCH_SCHEME = "M"
    SUSPEND = "U"
    WAITING = "W"
    PREPARING = "P"


#: Request states that end a request: after them no copy can land on its destination; every
#: other state is still live work for the conveyor.
TERMINAL_REQUESTS = (RequestState.DONE, RequestState.FAILED)
#: States of a request that never reached a transfer tool in its last attempt; one waiting to be
#: sent again under an unanswered job's key (``external_key``) keeps it through the retry.
UNSENT = (RequestState.NO_SOURCES, RequestState.MISMATCH_SCHEME, RequestState.SUBMISSION_FAILED)


class RequestType(CodedEnum):
    TRANSFER = "T"
    UPLOAD = "U"
    DOWNLOAD = "D"
    STAGEIN = "I"
    STAGEOUT = "O"


class AccountType(CodedEnum):
    USER = "U"
    GROUP = "G"
    SERVICE = "S"


class AccountStatus(CodedEnum):
    ACTIVE = "A"
    SUSPENDED = "S"
    DELETED = "D"


class IdentityType(CodedEnum):
    X509 = "X509"
    GSS = "GSS"
    USERPASS = "USERPASS"
    SSH = "SSH"
    SAML = "SAML"
    OIDC = "OIDC"


class ScopeStatus(CodedEnum):
    OPEN = "O"
    CLOSED = "C"
    DELETED = "D"


class RSEType(CodedEnum):
    DISK = "DISK"
    TAPE = "TAPE"


class SubscriptionState(CodedEnum):
    ACTIVE = "A"
    INACTIVE = "I"
    NEW = "N"
    UPDATED = "U"
    BROKEN = "B"


class BadFilesStatus(CodedEnum):
    BAD = "B"
    DELETED = "D"
    LOST = "L"
    RECOVERED = "R"
    SUSPICIOUS = "S"
    TEMPORARY_UNAVAILABLE = "T"


class ShareState(CodedEnum):
    PUBLISHED = "P"
    WITHDRAWN = "W"


class PIDServiceType(CodedEnum):
    LOCAL = "local"
    HANDLE = "handle"
    DATACITE = "datacite"


class LifetimeExceptionState(CodedEnum):
    """An exception to DID lifetimes asks for approval; only an APPROVED one holds a DID back."""

    APPROVED = "A"
    REJECTED = "R"
    WAITING = "W"


#: Rucio's tombstone sentinel meaning "delete as soon as possible".
OBSOLETE = datetime(1970, 1, 1)
