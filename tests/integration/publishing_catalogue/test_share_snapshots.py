"""The record snapshot a share keeps (``Share.record``) changes only with a new version (``update_share``)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from datamgmt.core import did_content, metadata, pid, replica
from datamgmt.core.oai_repository import CatalogueRepository
from tests.integration.publishing_catalogue.conftest import BASE

pytestmark = pytest.mark.integration


def test_harvested_record_follows_metadata_updates_and_withdrawal(catalogue: Session, db: str) -> None:
    repository = CatalogueRepository(db)
    pid.publish(catalogue, "data", "ds1", "root", BASE)
    catalogue.commit()
    published = repository.get_record("data", "ds1")
    assert published is not None and published.did_type == "DATASET" and published.pid_type == "local"
    assert published.first("title") == "Calibration run 7 <raw> & more"
    assert published.values("creator") == ["Doe, Jane", "Roe, Richard"]
    assert [(f.name, f.bytes, f.adler32) for f in published.files] == [
        ("data:ds1.f0", 100, "00000000"),
        ("data:ds1.f1", 101, "00000001"),
    ]

    metadata.set_metadata(catalogue, "data", "ds1", "title", "Renamed")
    catalogue.commit()
    assert repository.get_record("data", "ds1") == published  # what was published stays until a new version
    pid.update_share(catalogue, "data", "ds1", BASE)
    catalogue.commit()
    renamed = repository.get_record("data", "ds1")
    assert (
        renamed is not None
        and renamed.first("title") == "Renamed"
        and renamed.datestamp > published.datestamp
    )
    assert renamed.files == published.files

    pid.unpublish(catalogue, "data", "ds1", BASE)
    catalogue.commit()
    [tombstone] = repository.list_records(None, None, None, None, 10)
    assert tombstone.deleted and tombstone.files == () and tombstone.first("title") == "Renamed"


def test_files_added_after_publishing_are_harvested_after_update_share(catalogue: Session, db: str) -> None:
    repository = CatalogueRepository(db)
    pid.publish(catalogue, "data", "ds2", "root", BASE, pid_service="hdl")
    catalogue.commit()
    replica.add_replicas(
        catalogue, "SITE-A", [{"scope": "data", "name": "late", "bytes": 7, "adler32": "0000000a"}], "root"
    )
    did_content.attach(catalogue, "data", "ds2", [{"scope": "data", "name": "late"}])
    catalogue.commit()
    assert [f.name for f in repository.list_records(None, None, None, None, 10)[0].files] == ["data:ds2.f0"]

    pid.update_share(catalogue, "data", "ds2", BASE)
    catalogue.commit()
    [updated] = repository.list_records(None, None, "pidservice:hdl", None, 10)
    assert [f.name for f in updated.files] == ["data:ds2.f0", "data:late"] and updated.total_bytes == 107
    assert updated.pid_type == "handle" and updated.sets == ("scope:data", "pidservice:hdl")
