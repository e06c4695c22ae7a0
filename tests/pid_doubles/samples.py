"""Sample share records and an in-memory repository: the catalogue's stand-in in publishing tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from datamgmt.publishing.memory import MemoryRepository
from datamgmt.publishing.records import FileEntry, ShareRecord, pid_service_set_spec, scope_set_spec
from datamgmt.publishing.repository import RepositoryInfo

REPOSITORY_ID = "data.example.org"
T0 = datetime(2024, 5, 1, 8, 30, 0, tzinfo=UTC)
PID_SERVICES = (("doi", "datacite"), ("handle", "handle"), ("local", "local"))


def share(
    index: int,
    *,
    scope: str = "user.jdoe",
    datestamp: datetime | None = None,
    deleted: bool = False,
    pid_kind: int | None = None,
    **metadata: object,
) -> ShareRecord:
    """Share number ``index``; the PID service cycles doi → handle → local unless ``pid_kind`` says."""
    pid_type, service = PID_SERVICES[(index if pid_kind is None else pid_kind) % 3]
    return ShareRecord(
        share_id=f"share-{index:06d}",
        scope=scope,
        name=f'dataset {index} <&> "ü"',
        did_type="DATASET" if index % 2 else "CONTAINER",
        pid=f"10.5072/ds-{index}" if pid_type == "doi" else f"21.T99999/ds-{index}",
        pid_type=pid_type,
        pid_service=service,
        landing_url=f"https://{REPOSITORY_ID}/share/share-{index:06d}?a=1&b=2",
        datestamp=datestamp or T0 + timedelta(hours=index, microseconds=250_000),
        deleted=deleted,
        metadata={
            "title": f"Run {index} <calibration> & \x07friends",
            "creators": ["Doe, Jane", "Roe, Richard"],
            "subjects": ["physics", "detectors"],
            "description": "Raw data ]]> with markup <b>bold</b>",
            "rights": "CC-BY-4.0",
            "publisher": "Example Lab",
            "publication_year": "2024",
            "language": "en",
            **metadata,
        },
        files=[FileEntry(f"file{index}-{n}.root", 1000 + n, f"{n:08x}") for n in range(2)],
        sets=[scope_set_spec(scope), pid_service_set_spec(service)],
    )


def repository(count: int = 25, deleted: frozenset[int] = frozenset({3, 11})) -> MemoryRepository:
    """``count`` shares an hour apart from T0, alternating two scopes; ``deleted`` ones are tombstones."""
    info = RepositoryInfo(
        repository_name="Example data repository",
        repository_identifier=REPOSITORY_ID,
        admin_emails=("oai-admin@example.org",),
        earliest_datestamp=T0,
    )
    records = [
        share(i, scope="user.jdoe" if i % 2 == 0 else "data18", deleted=i in deleted) for i in range(count)
    ]
    return MemoryRepository(info, records, set_names={"scope": "Scopes", "pidservice": "PID services"})
