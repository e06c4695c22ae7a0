"""A real harvester (sickle) harvests the repository over HTTP, following resumption tokens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from flask import Flask
from lxml import etree
from sickle import Sickle
from sickle.oaiexceptions import BadArgument, BadResumptionToken

from datamgmt.api.oaipmh import make_oaipmh_blueprint
from datamgmt.publishing.memory import MemoryRepository
from tests.pid_doubles.samples import repository
from tests.schemas.validation import validate
from tests.serving import serve

pytestmark = pytest.mark.integration

COUNT = 57
DELETED = frozenset({3, 11, 40})


@pytest.fixture(scope="module")
def repo() -> MemoryRepository:
    return repository(COUNT, DELETED)


@pytest.fixture(scope="module")
def base_url(repo: MemoryRepository) -> Iterator[str]:
    app = Flask(__name__)
    app.register_blueprint(make_oaipmh_blueprint(repo, secret=b"harvest-secret-0123456789", page_size=10))
    with serve(app) as url:
        yield url + "/oai_pmh"


class ValidatingSickle(Sickle):
    """Sickle that validates every raw response against OAI-PMH.xsd and the payload schemas."""

    def harvest(self, **kwargs):  # noqa: ANN003, ANN201 - Sickle's signature
        response = super().harvest(**kwargs)
        validate(response.http_response.content)
        return response


def _sickle(base_url: str, method: str = "GET") -> ValidatingSickle:
    return ValidatingSickle(base_url, http_method=method, max_retries=0, timeout=30)


@pytest.mark.parametrize(
    ("prefix", "method"), [("oai_dc", "GET"), ("datacite", "POST"), ("oai_datacite", "GET")]
)
def test_full_harvest_gets_every_record_once(base_url: str, prefix: str, method: str) -> None:
    records = list(_sickle(base_url, method).ListRecords(metadataPrefix=prefix, ignore_deleted=False))
    identifiers = [record.header.identifier for record in records]
    assert len(identifiers) == len(set(identifiers)) == COUNT
    deleted = {int(r.header.identifier.split(":")[-1].split("%20")[1]) for r in records if r.deleted}
    assert deleted == DELETED
    assert all(record.metadata for record in records if not record.deleted)
    datestamps = [record.header.datestamp for record in records]
    assert datestamps == sorted(datestamps)


def test_harvest_identifiers_and_sets(base_url: str) -> None:
    sickle = _sickle(base_url)
    headers = list(sickle.ListIdentifiers(metadataPrefix="oai_dc", set="scope:data18", ignore_deleted=False))
    assert len(headers) == COUNT // 2
    assert all("scope:data18" in header.setSpecs for header in headers)
    specs = {s.setSpec for s in sickle.ListSets()}
    assert {"scope", "scope:user.jdoe", "scope:data18", "pidservice:datacite", "pidservice:handle"} <= specs
    assert sickle.Identify().repositoryName == "Example data repository"


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ({"from": "2024-05-02", "until": "2024-05-02"}, range(16, 40)),
        ({"from": "2024-05-01T20:30:00Z", "until": "2024-05-02T01:30:00Z"}, range(12, 18)),
        (
            {"from": "2024-05-03T00:00:00Z", "set": "pidservice:local"},
            [i for i in range(40, COUNT) if i % 3 == 2],
        ),
    ],
)
def test_selective_harvest_returns_exactly_the_selection(base_url: str, selection: dict, expected) -> None:  # noqa: ANN001
    headers = _sickle(base_url).ListIdentifiers(metadataPrefix="oai_dc", ignore_deleted=False, **selection)
    numbers = sorted(int(h.identifier.split(":")[-1].split("%20")[1]) for h in headers)
    assert numbers == list(expected)


def test_mixed_granularity_and_tampered_tokens_are_refused(base_url: str) -> None:
    with pytest.raises(BadArgument):
        list(
            _sickle(base_url).ListIdentifiers(
                metadataPrefix="oai_dc", **{"from": "2024-05-01", "until": "2024-05-02T00:00:00Z"}
            )
        )
    first = requests.get(base_url, params={"verb": "ListRecords", "metadataPrefix": "oai_dc"}, timeout=10)
    token = validate(first.content).findtext(".//{http://www.openarchives.org/OAI/2.0/}resumptionToken")
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(BadResumptionToken):
        _sickle(base_url).ListRecords(resumptionToken=tampered)


def test_http_level_contract(base_url: str) -> None:
    response = requests.get(base_url, params={"verb": "Bogus"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    root = validate(response.content)
    assert etree.QName(root).localname == "OAI-PMH"
