"""The /oai_pmh endpoint through Flask's test client; every response is validated against OAI-PMH.xsd."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from datamgmt.api.oaipmh import make_oaipmh_blueprint
from datamgmt.publishing.memory import MemoryRepository
from datamgmt.publishing.oai import make_identifier
from datamgmt.publishing.repository import RepositoryInfo
from datamgmt.publishing.xmlutil import OAI
from tests.pid_doubles.samples import REPOSITORY_ID, T0, repository, share
from tests.schemas.validation import validate

NS = {"o": OAI}
SECRET = b"test-secret-0123456789abcdef"
Get = Callable[..., etree._Element]


def oai_id(index: int) -> str:
    """The oai-identifier of sample share ``index`` (even: user.jdoe, odd: data18)."""
    record = share(index, scope="user.jdoe" if index % 2 == 0 else "data18")
    return make_identifier(REPOSITORY_ID, record.scope, record.name)


#: Query-string forms of the identifiers of a live share (2) and a deleted one (3).
ID2, ID3 = quote(oai_id(2), safe=""), quote(oai_id(3), safe="")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _app(repo: MemoryRepository, clock: Clock, page_size: int = 10) -> FlaskClient:
    app = Flask(__name__)
    app.register_blueprint(make_oaipmh_blueprint(repo, secret=SECRET, page_size=page_size, clock=clock))
    return app.test_client()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(clock: Clock) -> FlaskClient:
    return _app(repository(), clock)


@pytest.fixture
def get(client: FlaskClient) -> Get:
    def request(query: str = "", method: str = "GET", **form: str) -> etree._Element:
        response = client.post("/oai_pmh", data=form) if method == "POST" else client.get("/oai_pmh?" + query)
        assert response.status_code == 200
        assert response.mimetype == "text/xml"
        return validate(response.data)

    return request


def _error(root: etree._Element) -> str:
    errors = root.findall("o:error", NS)
    assert len(errors) == 1, etree.tostring(root)
    return errors[0].get("code")


def _ids(root: etree._Element) -> list[str]:
    return [element.text for element in root.iterfind(".//o:header/o:identifier", NS)]


def test_identify(get: Get) -> None:
    root = get("verb=Identify")
    identify = root.find("o:Identify", NS)
    assert identify.findtext("o:baseURL", namespaces=NS) == "http://localhost/oai_pmh"
    assert identify.findtext("o:deletedRecord", namespaces=NS) == "persistent"
    assert identify.findtext("o:granularity", namespaces=NS) == "YYYY-MM-DDThh:mm:ssZ"
    assert identify.findtext("o:earliestDatestamp", namespaces=NS) == "2024-05-01T08:30:00Z"
    assert root.find("o:request", NS).attrib == {"verb": "Identify"}
    assert root.findtext("o:responseDate", namespaces=NS) == "2025-01-01T00:00:00Z"


def test_configured_base_url_wins_over_the_request_url(clock: Clock) -> None:
    info = RepositoryInfo(
        "R", REPOSITORY_ID, ("a@example.org",), T0, base_url="https://proxy.example.org/oai_pmh"
    )
    client = _app(MemoryRepository(info), clock)
    root = validate(client.get("/oai_pmh?verb=Identify").data)
    assert root.findtext("o:Identify/o:baseURL", namespaces=NS) == "https://proxy.example.org/oai_pmh"
    assert root.findtext("o:request", namespaces=NS) == "https://proxy.example.org/oai_pmh"


def test_list_metadata_formats(get: Get) -> None:
    root = get("verb=ListMetadataFormats")
    prefixes = [e.text for e in root.iterfind(".//o:metadataPrefix", NS)]
    assert prefixes == ["oai_dc", "datacite", "oai_datacite"]
    assert len(get(f"verb=ListMetadataFormats&identifier={ID2}").findall(".//o:metadataFormat", NS)) == 3


def test_list_sets_is_hierarchical(get: Get) -> None:
    root = get("verb=ListSets")
    specs = [e.text for e in root.iterfind(".//o:setSpec", NS)]
    assert specs == sorted(specs)
    assert {"scope", "scope:user.jdoe", "scope:data18", "pidservice", "pidservice:local"} <= set(specs)
    names = {
        s.findtext("o:setSpec", namespaces=NS): s.findtext("o:setName", namespaces=NS)
        for s in root.iterfind(".//o:set", NS)
    }
    assert names["scope"] == "Scopes"


def test_list_sets_pages_with_tokens(clock: Clock) -> None:
    client = _app(repository(), clock, page_size=3)
    seen: list[str] = []
    query = "verb=ListSets"
    while True:
        root = validate(client.get("/oai_pmh?" + query).data)
        seen += [e.text for e in root.iterfind(".//o:setSpec", NS)]
        token = root.find(".//o:resumptionToken", NS)
        if token is None or not token.text:
            break
        query = f"verb=ListSets&resumptionToken={token.text}"
    assert token is not None and token.get("completeListSize") == str(len(seen)) and len(seen) == 7
    assert len(set(seen)) == 7


def test_get_record_in_every_format_and_deleted_records_have_no_metadata(get: Get) -> None:
    for prefix in ("oai_dc", "datacite", "oai_datacite"):
        root = get(f"verb=GetRecord&metadataPrefix={prefix}&identifier={ID2}")
        assert root.find("o:request", NS).attrib["identifier"] == oai_id(2)
        assert root.find(".//o:metadata", NS) is not None
    root = get(f"verb=GetRecord&metadataPrefix=oai_dc&identifier={ID3}")
    header = root.find(".//o:header", NS)
    assert header.get("status") == "deleted"
    assert root.find(".//o:metadata", NS) is None


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("verb=Nope", "badVerb"),
        ("verb=Identify&verb=Identify", "badVerb"),
        ("", "badVerb"),
        ("verb=Identify&metadataPrefix=oai_dc", "badArgument"),
        ("verb=ListRecords&metadataPrefix=oai_dc&set", "badArgument"),
        ("verb=ListRecords&metadataPrefix=oai_dc&from=2024-05-01&until=2024-05-02T00:00:00Z", "badArgument"),
        ("verb=ListRecords&metadataPrefix=oai_dc&from=2024-05-03&until=2024-05-01", "badArgument"),
        ("verb=ListRecords&metadataPrefix=oai_dc&resumptionToken=abc", "badArgument"),
        ("verb=ListRecords&resumptionToken=abc.def", "badResumptionToken"),
        ("verb=ListRecords&metadataPrefix=marc21", "cannotDisseminateFormat"),
        (
            "verb=GetRecord&metadataPrefix=marc21&identifier=oai:data.example.org:user.jdoe:x",
            "cannotDisseminateFormat",
        ),
        (
            "verb=GetRecord&metadataPrefix=oai_dc&identifier=oai:data.example.org:user.jdoe:nothere",
            "idDoesNotExist",
        ),
        ("verb=GetRecord&metadataPrefix=oai_dc&identifier=oai:other.org:user.jdoe:x", "idDoesNotExist"),
        ("verb=ListMetadataFormats&identifier=oai:data.example.org:nope:x", "idDoesNotExist"),
        (f"verb=ListMetadataFormats&identifier={ID3}", "noMetadataFormats"),
        ("verb=ListRecords&metadataPrefix=oai_dc&from=2030-01-01", "noRecordsMatch"),
        ("verb=ListIdentifiers&metadataPrefix=oai_dc&until=2024-04-30T23:59:59Z", "noRecordsMatch"),
        ("verb=ListRecords&metadataPrefix=oai_dc&set=scope:nobody", "noRecordsMatch"),
    ],
)
def test_errors_and_request_echo(get: Get, query: str, code: str) -> None:
    root = get(query)
    assert _error(root) == code
    attributes = root.find("o:request", NS).attrib
    if code in ("badVerb", "badArgument"):
        assert attributes == {}
    else:
        sent = dict(pair.split("=", 1) for pair in query.split("&"))
        assert attributes.get("identifier", "") == unquote(sent.get("identifier", ""))
        assert set(attributes) == set(sent)
        assert attributes["verb"] == sent["verb"]


def test_no_set_hierarchy(clock: Clock) -> None:
    bare = MemoryRepository(RepositoryInfo("R", REPOSITORY_ID, ("a@example.org",), T0))
    client = _app(bare, clock)
    for query in ("verb=ListSets", "verb=ListRecords&metadataPrefix=oai_dc&set=scope"):
        assert _error(validate(client.get("/oai_pmh?" + query).data)) == "noSetHierarchy"


def _harvest(get: Get, query: str) -> tuple[list[str], list[etree._Element]]:
    identifiers, tokens = [], []
    root = get(query)
    verb = root.find("o:request", NS).get("verb")
    while True:
        identifiers += _ids(root)
        token = root.find(".//o:resumptionToken", NS)
        if token is None:
            return identifiers, tokens
        tokens.append(token)
        if not token.text:
            return identifiers, tokens
        root = get(f"verb={verb}&resumptionToken={token.text}")


def test_list_records_pages_with_cursor_size_expiry_and_a_final_empty_token(get: Get) -> None:
    identifiers, tokens = _harvest(get, "verb=ListRecords&metadataPrefix=oai_dc")
    assert len(identifiers) == len(set(identifiers)) == 25
    assert [t.get("cursor") for t in tokens] == ["0", "10", "20"]
    assert {t.get("completeListSize") for t in tokens} == {"25"}
    assert tokens[0].get("expirationDate") == "2025-01-01T01:00:00Z"
    assert tokens[-1].text is None and tokens[-1].get("expirationDate") is None


def test_a_one_page_list_has_no_token(get: Get) -> None:
    root = get("verb=ListIdentifiers&metadataPrefix=oai_dc&set=pidservice:datacite")
    assert root.find(".//o:resumptionToken", NS) is None
    assert len(_ids(root)) == 9


def test_deleted_records_are_listed_as_deleted_headers(get: Get) -> None:
    root = get(
        "verb=ListRecords&metadataPrefix=datacite&from=2024-05-01T11:00:00Z&until=2024-05-01T12:00:00Z"
    )
    records = root.findall(".//o:record", NS)
    assert len(records) == 1
    assert records[0].find("o:header", NS).get("status") == "deleted"
    assert records[0].find("o:metadata", NS) is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("from=2024-05-01&until=2024-05-01", range(0, 16)),
        ("from=2024-05-02", range(16, 25)),
        ("from=2024-05-01T10:30:00Z&until=2024-05-01T12:30:00Z", range(2, 5)),
        ("until=2024-05-01T10:30:00Z", range(0, 3)),
        ("set=scope:data18", range(1, 25, 2)),
        ("set=scope", range(25)),
        ("set=pidservice:handle&from=2024-05-02", [i for i in range(16, 25) if i % 3 == 1]),
    ],
)
def test_selective_harvesting(get: Get, query: str, expected) -> None:  # noqa: ANN001
    identifiers, _ = _harvest(get, "verb=ListIdentifiers&metadataPrefix=oai_dc&" + query)
    numbers = sorted(int(identifier.split(":")[-1].split("%20")[1]) for identifier in identifiers)
    assert numbers == list(expected)


def test_post_requests_and_post_tokens(get: Get) -> None:
    root = get(method="POST", verb="ListRecords", metadataPrefix="oai_dc")
    token = root.find(".//o:resumptionToken", NS).text
    following = get(method="POST", verb="ListRecords", resumptionToken=token)
    assert following.find(".//o:resumptionToken", NS).get("cursor") == "10"


def test_tokens_are_idempotent_expire_and_resist_tampering(get: Get, clock: Clock) -> None:
    token = get("verb=ListRecords&metadataPrefix=oai_dc").find(".//o:resumptionToken", NS).text
    first = _ids(get(f"verb=ListRecords&resumptionToken={token}"))
    assert _ids(get(f"verb=ListRecords&resumptionToken={token}")) == first
    forged = token[:5] + ("x" if token[5] != "x" else "y") + token[6:]
    assert _error(get(f"verb=ListRecords&resumptionToken={forged}")) == "badResumptionToken"
    assert _error(get(f"verb=ListIdentifiers&resumptionToken={token}")) == "badResumptionToken"
    clock.now += timedelta(hours=2)
    assert _error(get(f"verb=ListRecords&resumptionToken={token}")) == "badResumptionToken"


def test_post_must_be_form_encoded(client: FlaskClient) -> None:
    response = client.post("/oai_pmh", data=b"verb=Identify", content_type="text/plain")
    assert response.status_code == 415


def test_response_streams_in_chunks(client: FlaskClient) -> None:
    response = client.get("/oai_pmh?verb=ListRecords&metadataPrefix=oai_dc", buffered=False)
    chunks = [chunk for chunk in response.response if chunk]
    assert len(chunks) > 10
    validate(b"".join(chunks))
