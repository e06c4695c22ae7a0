"""What the OAI-PMH engine needs from whoever stores the published shares.

The engine owns the protocol (arguments, errors, tokens, XML); a repository only
answers narrow questions about records.  The catalogue implements this over its
tables; :mod:`datamgmt.publishing.memory` implements it over a list for tests and
benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from datamgmt.publishing.records import ShareRecord

#: Keyset position in the harvest order: (datestamp, share_id) of the last record returned.
RecordKey = tuple[datetime, str]


@dataclass(frozen=True, slots=True)
class RepositoryInfo:
    """The facts Identify reports.

    ``base_url`` is None when the URL the harvester used should be reported (right for
    direct deployments; set it explicitly behind a proxy).  ``repository_identifier`` is
    the registered domain name used in ``oai:<repository_identifier>:<scope>:<name>``.
    """

    repository_name: str
    repository_identifier: str
    admin_emails: tuple[str, ...]
    earliest_datestamp: datetime
    base_url: str | None = None


@dataclass(frozen=True, slots=True)
class SetInfo:
    """One OAI set: its setSpec (``pidservice:local``) and a human-readable name."""

    spec: str
    name: str


class Repository(Protocol):
    """Read access to published shares, in harvest order.

    Datestamp bounds are inclusive and timezone-aware (UTC); the engine has already
    widened a day-granularity ``until`` to the last instant of that day.  ``set_spec``
    selects records in that set or any of its descendants (``a`` matches ``a:b``).
    Deleted shares are records with ``deleted=True`` and must keep being returned.
    """

    def identify_info(self) -> RepositoryInfo:
        """Identify's facts; ``earliest_datestamp`` bounds every datestamp, deletions included."""
        ...

    def list_sets(self) -> list[SetInfo]:
        """Every set, ordered by setSpec; an empty list means the repository has no sets."""
        ...

    def get_record(self, scope: str, name: str) -> ShareRecord | None:
        """The share published for the DID ``scope:name`` (possibly deleted), or None."""
        ...

    def list_records(
        self,
        from_: datetime | None,
        until: datetime | None,
        set_spec: str | None,
        after_key: RecordKey | None,
        limit: int,
    ) -> list[ShareRecord]:
        """At most ``limit`` matching records with ``sort_key > after_key``, ordered by sort_key."""
        ...

    def count_records(self, from_: datetime | None, until: datetime | None, set_spec: str | None) -> int:
        """How many records match, for ``completeListSize``."""
        ...
