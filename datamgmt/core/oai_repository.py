"""The OAI-PMH repository over the catalogue's shares.

Implements :class:`datamgmt.publishing.repository.Repository`.  The OAI blueprint calls
it once or twice per request, outside any API transaction, so every method opens its
own short read transaction.  Listing is keyset pagination on ``(datestamp, id)``, the
index the shares table keeps for it, so page N costs what page 1 costs; each share row
carries the snapshot of its record (``Share.record``), so a page is one query and JSON
decoding, not look-ups of metadata and files.

Sets: ``pidservice:<service>`` and ``scope:<scope>``, with their parents ``pidservice``
and ``scope`` listed so the hierarchy is explicit (a parent selects every share).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select

from datamgmt.config import get_config
from datamgmt.core.db.models import PIDService, Share
from datamgmt.core.db.session import transaction
from datamgmt.core.pid import service_kinds, stored_record
from datamgmt.publishing.records import ShareRecord, pid_service_set_spec, scope_set_spec
from datamgmt.publishing.repository import RecordKey, RepositoryInfo, SetInfo

_SET_FAMILIES = {"scope": ("Scopes", Share.scope), "pidservice": ("PID services", Share.pid_service)}
#: The columns :func:`~datamgmt.core.pid.stored_record` reads: plain rows load faster than ORM objects.
_RECORD_COLUMNS = (
    Share.id,
    Share.scope,
    Share.name,
    Share.pid,
    Share.pid_service,
    Share.landing_url,
    Share.state,
    Share.datestamp,
    Share.record,
)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


class CatalogueRepository:
    """Published shares of the catalogue at ``url`` (default ``[database] url``)."""

    def __init__(self, url: str | None = None, info: RepositoryInfo | None = None) -> None:
        self.url = url
        self._info = info

    @classmethod
    def from_config(cls, url: str | None = None) -> CatalogueRepository:
        """Identify's facts from ``[oaipmh]``: repository_name, repository_identifier, admin_email."""
        config = get_config()
        base_url = config.get("api", "base_url")
        info = RepositoryInfo(
            repository_name=config.get("oaipmh", "repository_name"),
            repository_identifier=config.get("oaipmh", "repository_identifier"),
            admin_emails=tuple(
                e.strip() for e in config.get("oaipmh", "admin_email").split(",") if e.strip()
            ),
            earliest_datestamp=datetime.min.replace(tzinfo=UTC),
            base_url=f"{base_url.rstrip('/')}/oai_pmh" if base_url else None,
        )
        return cls(url, info)

    def identify_info(self) -> RepositoryInfo:
        """The configured facts with the earliest datestamp read now (deletions included).

        An empty repository reports an hour ago, as Onedata does: any later share is newer.
        """
        with transaction(self.url) as session:
            earliest = session.scalar(select(func.min(Share.datestamp)))
        moment = earliest.replace(tzinfo=UTC) if earliest else datetime.now(UTC) - timedelta(hours=1)
        info = self._info or RepositoryInfo(
            "datamgmt repository", "datamgmt.local", ("admin@localhost.localdomain",), moment
        )
        return RepositoryInfo(
            info.repository_name,
            info.repository_identifier,
            info.admin_emails,
            moment.replace(microsecond=0),
            info.base_url,
        )

    def list_sets(self) -> list[SetInfo]:
        with transaction(self.url) as session:
            services = list(session.execute(select(PIDService.name, PIDService.service_type)).tuples())
            scopes = list(session.scalars(select(Share.scope).distinct()))
        sets = [SetInfo(family, title) for family, (title, _) in _SET_FAMILIES.items()]
        sets += [
            SetInfo(pid_service_set_spec(name), f"Published through {name} ({kind.value})")
            for name, kind in services
        ]
        sets += [SetInfo(scope_set_spec(scope), f"Scope {scope}") for scope in scopes]
        return sorted(sets, key=lambda item: item.spec)

    def get_record(self, scope: str, name: str) -> ShareRecord | None:
        with transaction(self.url) as session:
            share = session.execute(
                select(*_RECORD_COLUMNS).where(Share.scope == scope, Share.name == name)
            ).first()
            return stored_record(share, service_kinds(session)) if share is not None else None

    @staticmethod
    def _where(from_: datetime | None, until: datetime | None, set_spec: str | None) -> list[Any]:
        """Predicates of a selective harvest; an unknown set selects nothing (noRecordsMatch)."""
        clauses: list[Any] = []
        if from_ is not None:
            clauses.append(Share.datestamp >= _naive(from_))
        if until is not None:
            clauses.append(Share.datestamp <= _naive(until))
        if set_spec is not None:
            family, _, member = set_spec.partition(":")
            if family not in _SET_FAMILIES:
                clauses.append(Share.id.is_(None))
            elif member:
                clauses.append(_SET_FAMILIES[family][1] == member)
        return clauses

    def list_records(
        self,
        from_: datetime | None,
        until: datetime | None,
        set_spec: str | None,
        after_key: RecordKey | None,
        limit: int,
    ) -> list[ShareRecord]:
        clauses = self._where(from_, until, set_spec)
        if after_key is not None:
            stamp, share_id = _naive(after_key[0]), after_key[1]
            # The leading ``>=`` bounds an index range; a bare OR of the two cases makes
            # SQLite scan the index from its start, so page N would cost N pages.
            clauses += [Share.datestamp >= stamp, or_(Share.datestamp > stamp, Share.id > share_id)]
        query = select(*_RECORD_COLUMNS).where(*clauses).order_by(Share.datestamp, Share.id).limit(limit)
        with transaction(self.url) as session:
            kinds = service_kinds(session)
            return [stored_record(row, kinds) for row in session.execute(query)]

    def count_records(self, from_: datetime | None, until: datetime | None, set_spec: str | None) -> int:
        with transaction(self.url) as session:
            return (
                session.scalar(
                    select(func.count()).select_from(Share).where(*self._where(from_, until, set_spec))
                )
                or 0
            )
