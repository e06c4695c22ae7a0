"""One exception hierarchy for the whole service.

Every error knows its HTTP status and the Rucio class name that the stock
``rucio-clients`` package re-raises by name, so the API maps errors to responses
in one place and the client maps them back.  Class names equal Rucio's where
Rucio has the concept, which keeps ``ExceptionClass`` on the wire identical.
"""

from __future__ import annotations


class DatamgmtError(Exception):
    """Base of every error the service raises on purpose."""

    status: int = 500
    #: The ``ExceptionClass`` sent over REST; defaults to the Python class name.
    rucio_name: str | None = None
    default_message: str = "An unknown error occurred"
    #: For transient failures: the seconds after which repeating the call may succeed (``Retry-After``).
    retry_after: int | None = None

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    @property
    def error_class(self) -> str:
        """The name clients see in ``ExceptionClass``."""
        return self.rucio_name or type(self).__name__


def error_classes() -> dict[str, type[DatamgmtError]]:
    """Map every wire class name to its exception, for clients re-raising by name.

    Several classes may send one wire name (``AccountSuspended`` sends ``CannotAuthenticate``);
    the class of that very name wins, so the map does not depend on the order in which this
    module defines its classes.  Each wire name that no class bears (``IdentityError``,
    ``KeyError``, …) is sent by exactly one class.
    """
    found: dict[str, type[DatamgmtError]] = {}
    pending: list[type[DatamgmtError]] = [DatamgmtError]
    while pending:
        cls = pending.pop()
        name = cls.rucio_name or cls.__name__
        if name not in found or cls.__name__ == name:
            found[name] = cls
        pending.extend(cls.__subclasses__())
    return found


# --- The kinds every subject shares: bad input, missing, duplicate, not now, unavailable ----------
class InputValidationError(DatamgmtError):
    status = 400
    default_message = "There is an error with one of the input parameters"


class InvalidObject(InputValidationError):
    default_message = "Provided object does not match schema"


class InvalidType(InputValidationError):
    default_message = "Provided type is considered invalid"


class InvalidValueForKey(InputValidationError):
    default_message = "Invalid value for the key"


class MalformedRequest(InputValidationError):
    # Rucio answers a missing token or an undecodable body with a bare ``ValueError``.
    rucio_name = "ValueError"
    default_message = "The request is malformed"


class MissingParameter(InputValidationError):
    # Rucio answers a missing body key with a bare ``KeyError``.
    rucio_name = "KeyError"
    default_message = "A required parameter is missing"


class UnsupportedRequestedContentType(DatamgmtError):
    status = 406
    default_message = "The requested content type is not supported"


class NotFound(DatamgmtError):
    status = 404
    default_message = "The requested resource was not found"


class Duplicate(DatamgmtError):
    status = 409
    default_message = "An object with the same identifier already exists"


class UnsupportedOperation(InputValidationError):
    status = 409
    default_message = "The resource does not support the operation"


class ServiceUnavailable(DatamgmtError):
    status = 503
    default_message = "The service is unavailable"


# --- Authentication, accounts and permissions -----------------------------------------------------
class CannotAuthenticate(DatamgmtError):
    status = 401
    default_message = "Cannot authenticate"


class CannotAuthorize(DatamgmtError):
    """Rucio's refusal of an OIDC token refresh (``/auth/oidc_refresh``)."""

    status = 401
    default_message = "Cannot authorize token request."


class AccountSuspended(CannotAuthenticate):
    rucio_name = "CannotAuthenticate"
    default_message = "The account is suspended"


class TooManyLoginAttempts(DatamgmtError):
    """Too many failed logins from this source or for this identity; ``Retry-After`` says when to retry."""

    status = 429
    default_message = "Too many failed logins; retry later"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed logins; retry in {retry_after} seconds")
        self.retry_after = retry_after


class TooManyRequests(DatamgmtError):
    """Too many unauthenticated or login requests from this source (the flood limit);
    ``Retry-After`` says when to retry."""

    status = 429
    default_message = "Too many requests; retry later"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many requests from this address; retry in {retry_after} seconds")
        self.retry_after = retry_after


class AccessDenied(DatamgmtError):
    # Rucio answers 401 for permission failures; the stock client relies on it.
    status = 401
    default_message = "Access to the requested resource denied"


class AccountNotFound(NotFound):
    default_message = "Account does not exist"


class VONotFound(NotFound):
    default_message = "VO does not exist"


class IdentityNotFound(NotFound):
    rucio_name = "IdentityError"
    default_message = "Identity does not exist"


class ScopeNotFound(NotFound):
    default_message = "Scope does not exist"


# --- RSEs and RSE expressions ---------------------------------------------------------------------
class RSENotFound(NotFound):
    default_message = "RSE does not exist"


class RSEAttributeNotFound(NotFound):
    default_message = "RSE attribute not found"


class RSEProtocolNotSupported(NotFound):
    default_message = "RSE does not support the requested protocol"


class InvalidRSEExpression(DatamgmtError):
    # Rucio answers 409 here, not 400 (docs/rucio-compatibility.md).
    status = 409
    default_message = "Provided RSE expression is considered invalid"


class RSEWriteBlocked(DatamgmtError):
    status = 409
    default_message = "RSE excluded; not available for writing"


class RSEOverQuota(DatamgmtError):
    status = 409
    default_message = "There is not enough space left on the RSE to fulfil the operation"


class ResourceTemporaryUnavailable(ServiceUnavailable):
    """The RSE is closed for this operation (Rucio's answer when deleting on an RSE closed for deletion)."""

    default_message = "The resource is temporarily unavailable"


# --- Data identifiers, their metadata and lifetimes -----------------------------------------------
class DataIdentifierNotFound(NotFound):
    default_message = "Data identifier not found"


class DataIdentifierAlreadyExists(Duplicate):
    default_message = "Data identifier already exists"


class DuplicateContent(Duplicate):
    default_message = "Data identifier already added to the destination content"


class UnsupportedStatus(InputValidationError):
    default_message = "Unsupported data identifier status"


class FileConsistencyMismatch(InputValidationError):
    status = 409
    default_message = "Error related to file consistency"


class InvalidMetadata(InputValidationError):
    default_message = "Provided metadata is considered invalid"


class KeyNotFound(InputValidationError):
    status = 404
    default_message = "Key does not exist"


class UnsupportedKeyType(InputValidationError):
    default_message = "The key type is not supported"


class UnsupportedValueType(InputValidationError):
    default_message = "The value type is not supported"


class DIDFilterSyntaxError(InputValidationError):
    default_message = "Error parsing the DID filter"


class LifetimeExceptionNotFound(NotFound):
    default_message = "Exception does not exist"


class LifetimeExceptionDuplicate(Duplicate):
    default_message = "An exception already exists"


# --- Replicas -------------------------------------------------------------------------------------
class ReplicaNotFound(NotFound):
    default_message = "Replica not found"


class FileAlreadyExists(Duplicate):
    default_message = "The file already exists"


class FileReplicaAlreadyExists(Duplicate):
    default_message = "File name in specified scope already exists"


class ReplicaIsLocked(DatamgmtError):
    status = 423  # Rucio's POST /replicas/tombstone answers 423 Locked
    default_message = "Replica is locked"


# --- Replication rules and quotas -----------------------------------------------------------------
class RuleNotFound(NotFound):
    default_message = "No replication rule found"


class DuplicateRule(Duplicate):
    default_message = "A duplicate rule for this account, DID, RSE expression and copies already exists"


class InvalidReplicationRule(InputValidationError):
    default_message = "Replication rule is invalid"


class InvalidRuleWeight(InputValidationError):
    default_message = "An RSE selected has no value for the weight attribute"


class InvalidSourceReplicaExpression(InputValidationError):
    default_message = "Source replica expression is invalid"


class RuleLocked(UnsupportedOperation):
    rucio_name = "UnsupportedOperation"
    default_message = "The rule is locked"


class StagingAreaRuleRequiresLifetime(DatamgmtError):
    status = 409
    default_message = "A rule on a staging area RSE needs a lifetime"


class InsufficientAccountLimit(DatamgmtError):
    status = 409
    default_message = "There is not enough quota left to fulfil the operation"


class InsufficientTargetRSEs(DatamgmtError):
    status = 409
    default_message = "There are not enough target RSEs to fulfil the request at this time"


class RuleReplaceFailed(DatamgmtError):
    """A rule could not be replaced by a smaller one (Rucio's ``POST /rules/<id>/reduce``)."""

    status = 409
    default_message = "The replace operation for the rule failed"


# --- Transfers and subscriptions ------------------------------------------------------------------
class RequestNotFound(NotFound):
    default_message = "Request not found"


class TransferToolError(DatamgmtError):
    status = 503
    rucio_name = "TransferToolTimeout"
    default_message = "The transfer tool failed"


class SubscriptionNotFound(NotFound):
    default_message = "Subscription not found"


class SubscriptionDuplicate(Duplicate):
    default_message = "A subscription with the same identifier already exists"


# --- Storage --------------------------------------------------------------------------------------
class StorageError(DatamgmtError):
    """A storage endpoint refused or failed an operation."""

    status = 503
    rucio_name = "ServiceUnavailable"
    default_message = "Storage operation failed"


class ChecksumMismatch(StorageError):
    rucio_name = "FileConsistencyMismatch"
    status = 409
    default_message = "Checksum mismatch between source and destination"


class SourceNotFound(NotFound):
    default_message = "Source file not found on storage"


class InvalidPath(InputValidationError):
    default_message = "The path is invalid or escapes its storage prefix"


# --- Publishing: PID services, shares, OAI-PMH and open data --------------------------------------
class PIDServiceNotFound(NotFound):
    default_message = "PID service not found"


class PIDServiceError(DatamgmtError):
    status = 502
    default_message = "The PID service failed"


class PIDServiceAuthenticationFailed(PIDServiceError):
    default_message = "The PID service refused our credentials"


class PIDAlreadyExists(Duplicate):
    default_message = "The PID already exists at the PID service"


class PIDNotFound(NotFound):
    default_message = "The PID is not known to the PID service"


class ShareNotFound(NotFound):
    default_message = "Share not found"


class BadResumptionToken(InputValidationError):
    default_message = "The resumption token is invalid or has expired"


class OpenDataError(InputValidationError):
    default_message = "Error in the opendata request"


class OpenDataInvalidStateUpdate(OpenDataError):
    default_message = "The opendata state cannot change that way"


class OpenDataInvalidState(OpenDataError):
    default_message = "The opendata entry is not in a state that allows this"


class OpenDataDataIdentifierNotFound(NotFound):
    default_message = "The DID is not an opendata entry"


class OpenDataDataIdentifierAlreadyExists(Duplicate):
    default_message = "The DID is already an opendata entry"


# --- Configuration and the database ---------------------------------------------------------------
class ConfigurationError(DatamgmtError):
    status = 500
    rucio_name = "ConfigurationError"
    default_message = "The service configuration is invalid"


class ConfigNotFound(NotFound):
    default_message = "The configuration value was not found"


class DatabaseException(DatamgmtError):
    status = 500
    default_message = "Database exception"


class DatabaseUnavailable(DatabaseException):
    """The database could not be reached, or dropped the connection, during a unit of work.

    ``retriable`` says the unit can be run again at once on a fresh connection without any
    risk of doing it twice: no statement of it had run, or it only read.
    """

    status = 503
    rucio_name = "DatabaseException"
    default_message = "The database is unavailable; retry the request"
    retry_after = 1

    def __init__(self, message: str | None = None, retriable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable
