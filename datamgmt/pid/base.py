"""The one interface every PID service client offers, and the HTTP plumbing they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import requests

from datamgmt.exceptions import (
    DatamgmtError,
    PIDAlreadyExists,
    PIDNotFound,
    PIDServiceAuthenticationFailed,
    PIDServiceError,
)
from datamgmt.publishing.records import ShareRecord

DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where a PID points now and the state the service reports.

    ``state`` is the service's own word: ``draft``/``registered``/``findable`` for
    DataCite, ``active``/``withdrawn`` for Handle and local PIDs.
    """

    pid: str
    url: str | None
    state: str


class PIDClient(Protocol):
    """Mints, updates, withdraws and resolves PIDs at one PID service.

    PIDs are never deleted once public: withdrawing leaves a tombstone that still
    resolves (to the landing page, which then says the share was withdrawn).
    """

    def mint(self, suffix: str | None, landing_url: str, record: ShareRecord) -> str:
        """Register a new PID (random suffix when None) pointing at ``landing_url``; return it."""
        ...

    def update(self, pid: str, landing_url: str, record: ShareRecord) -> None:
        """Point the PID at ``landing_url`` and refresh the metadata the service holds."""
        ...

    def withdraw(self, pid: str) -> None:
        """Tombstone the PID: it keeps resolving but is marked withdrawn."""
        ...

    def resolve(self, pid: str) -> Resolution:
        """Ask the service where the PID points."""
        ...


def raise_for_status(response: requests.Response, pid: str, service: str) -> None:
    """Turn an HTTP failure of a PID service into our exception hierarchy."""
    if response.ok:
        return
    detail = f"{service} answered {response.status_code} for {pid}: {response.text[:300]}"
    error: type[DatamgmtError]
    if response.status_code in (401, 403):
        error = PIDServiceAuthenticationFailed
    elif response.status_code == 404:
        error = PIDNotFound
    elif response.status_code == 409:
        error = PIDAlreadyExists
    else:
        error = PIDServiceError
    raise error(detail)


def new_session(username: str, password: str, verify: bool | str) -> requests.Session:
    """A session with HTTP Basic credentials and the TLS trust the service needs."""
    session = requests.Session()
    session.auth = (username, password)
    session.verify = verify
    return session
