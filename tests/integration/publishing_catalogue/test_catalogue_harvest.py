"""The catalogue-backed OAI-PMH repository harvested by a real client (sickle) over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask
from sickle import Sickle

from datamgmt.api.oaipmh import make_oaipmh_blueprint
from datamgmt.core import pid
from datamgmt.core.oai_repository import CatalogueRepository
from datamgmt.publishing.repository import RepositoryInfo
from tests.integration.publishing_catalogue.conftest import BASE, add_dataset
from tests.schemas.validation import validate
from tests.serving import serve

pytestmark = pytest.mark.integration

COUNT = 23
WITHDRAWN = {"h3", "h11", "h17"}


class ValidatingSickle(Sickle):
    def harvest(self, **kwargs):  # noqa: ANN003, ANN201 - Sickle's signature
        response = super().harvest(**kwargs)
        validate(response.http_response.content)
        return response


@pytest.fixture
def published(catalogue, db):  # noqa: ANN001
    for index in range(COUNT):
        name = f"h{index}"
        add_dataset(
            catalogue,
            name,
            files=1,
            meta={"title": f"Harvest {index}", "creator": "Doe, Jane", "publisher": "Example Lab"},
        )
        pid.publish(catalogue, "data", name, "root", BASE, pid_service="hdl" if index % 5 == 0 else None)
    for name in WITHDRAWN:
        pid.unpublish(catalogue, "data", name, BASE)
    catalogue.commit()
    info = RepositoryInfo(
        "Catalogue", "data.example.org", ("oai@example.org",), datetime.min.replace(tzinfo=UTC)
    )
    app = Flask(__name__)
    app.register_blueprint(
        make_oaipmh_blueprint(CatalogueRepository(db, info), secret=b"s" * 32, page_size=5)
    )
    with serve(app) as url:
        yield ValidatingSickle(url + "/oai_pmh", max_retries=0, timeout=30)


@pytest.mark.parametrize("prefix", ["oai_dc", "datacite", "oai_datacite"])
def test_every_share_is_harvested_exactly_once(published, prefix) -> None:  # noqa: ANN001
    records = list(published.ListRecords(metadataPrefix=prefix, ignore_deleted=False))
    names = [record.header.identifier.rsplit(":", 1)[1] for record in records]
    assert len(names) == len(set(names)) == COUNT
    assert {n for n, r in zip(names, records, strict=True) if r.deleted} == WITHDRAWN
    assert all(record.metadata for record in records if not record.deleted)
    datestamps = [record.header.datestamp for record in records]
    assert datestamps == sorted(datestamps)


def test_sets_identify_and_get_record(published) -> None:  # noqa: ANN001
    specs = {s.setSpec for s in published.ListSets()}
    assert {
        "scope",
        "scope:data",
        "pidservice",
        "pidservice:local",
        "pidservice:hdl",
        "pidservice:dc",
    } <= specs
    handles = list(
        published.ListIdentifiers(metadataPrefix="oai_dc", set="pidservice:hdl", ignore_deleted=False)
    )
    assert sorted(h.identifier.rsplit(":", 1)[1] for h in handles) == sorted(
        f"h{i}" for i in range(0, COUNT, 5)
    )
    assert (
        len(list(published.ListIdentifiers(metadataPrefix="oai_dc", set="scope", ignore_deleted=False)))
        == COUNT
    )
    identify = published.Identify()
    assert identify.repositoryName == "Catalogue" and identify.deletedRecord == "persistent"
    record = published.GetRecord(identifier="oai:data.example.org:data:h1", metadataPrefix="oai_dc")
    assert record.metadata["title"] == ["Harvest 1"] and record.metadata["creator"] == ["Doe, Jane"]
    deleted = published.GetRecord(identifier="oai:data.example.org:data:h3", metadataPrefix="oai_dc")
    assert deleted.deleted
