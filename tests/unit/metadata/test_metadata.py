"""Key-value typing, reserved keys, JSON/RDF documents and filter parsing."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import rdflib
from sqlalchemy import select, update

from datamgmt.core import did, metadata, metadata_filter, scope
from datamgmt.core.db.models import DataIdentifier, DIDMeta
from datamgmt.core.db.types import utcnow
from datamgmt.exceptions import (
    AccessDenied,
    DataIdentifierNotFound,
    DIDFilterSyntaxError,
    InvalidMetadata,
    KeyNotFound,
)


@pytest.fixture
def catalogue(session, root):
    scope.add_scope(session, "data", "root")
    did.add_collection(session, "data", "ds1", "DATASET", "root")
    session.commit()
    return session


def test_values_are_typed_into_their_columns(catalogue):
    when = datetime(2024, 5, 1, 12, 30)
    metadata.set_metadata_bulk(
        catalogue,
        "data",
        "ds1",
        {"project": "e2e", "run": 42, "energy": 13.6, "calibrated": True, "taken": when, "day": "2024-05-02"},
    )
    rows = {row.key: row for row in catalogue.scalars(select(DIDMeta))}
    assert (rows["project"].value_type, rows["project"].value_str) == ("str", "e2e")
    assert (rows["run"].value_type, rows["run"].value_num) == ("int", 42.0)
    assert (rows["energy"].value_type, rows["energy"].value_num) == ("float", 13.6)
    assert (rows["calibrated"].value_type, rows["calibrated"].value_num) == ("bool", 1.0)
    assert (rows["taken"].value_type, rows["taken"].value_date) == ("date", when)
    assert rows["day"].value_type == "date"
    meta = metadata.get_metadata(catalogue, "data", "ds1", plugin="JSON")
    assert meta == {
        "project": "e2e",
        "run": 42,
        "energy": 13.6,
        "calibrated": True,
        "taken": when,
        "day": datetime(2024, 5, 2),
    }
    assert type(meta["run"]) is int and type(meta["calibrated"]) is bool


def test_setting_again_replaces_and_delete_removes(catalogue):
    metadata.set_metadata(catalogue, "data", "ds1", "run", 1)
    metadata.set_metadata(catalogue, "data", "ds1", "run", "one")
    assert metadata.get_metadata(catalogue, "data", "ds1", "JSON") == {"run": "one"}
    metadata.delete_metadata(catalogue, "data", "ds1", "run")
    assert metadata.get_metadata(catalogue, "data", "ds1", "JSON") == {}
    with pytest.raises(KeyNotFound):
        metadata.delete_metadata(catalogue, "data", "ds1", "run")


@pytest.mark.parametrize(
    "key", ["bytes", "adler32", "md5", "did_type", "account", "created_at", "is_open", "length", "guid"]
)
def test_reserved_keys_are_readable_but_read_only(catalogue, key):
    assert key in metadata.get_metadata(catalogue, "data", "ds1")
    with pytest.raises(AccessDenied, match="reserved system key"):
        metadata.set_metadata(catalogue, "data", "ds1", key, "x")
    with pytest.raises(AccessDenied):
        metadata.set_metadata_bulk(catalogue, "data", "ds1", {"fine": 1, key: 2})
    with pytest.raises(AccessDenied):
        metadata.delete_metadata(catalogue, "data", "ds1", key)
    assert "fine" not in metadata.get_metadata(catalogue, "data", "ds1", "JSON")


def test_lifetime_and_is_new_set_their_columns_as_rucio_clients_expect(catalogue):
    """``rucio erase`` sets ``lifetime``; ``rucio subscription touch`` sets ``is_new``."""
    catalogue.execute(update(DataIdentifier).values(is_new=False))
    metadata.set_dids_metadata_bulk(
        catalogue, [{"scope": "data", "name": "ds1", "meta": {"lifetime": 86400, "is_new": True}}]
    )
    row = catalogue.get(DataIdentifier, ("data", "ds1"))
    catalogue.refresh(row)
    assert row.is_new is True
    assert timedelta(hours=23) < row.expired_at - utcnow() <= timedelta(hours=24)
    assert metadata.get_metadata(catalogue, "data", "ds1", "JSON") == {}  # no key-value row for either
    metadata.set_metadata(catalogue, "data", "ds1", "lifetime", None)  # ``rucio erase --undo``
    catalogue.refresh(row)
    assert row.expired_at is None
    for key, bad in (("lifetime", -1), ("lifetime", "soon"), ("lifetime", True), ("is_new", "maybe")):
        with pytest.raises(InvalidMetadata):
            metadata.set_metadata(catalogue, "data", "ds1", key, bad)


def test_column_metadata_shows_the_fixed_columns(catalogue):
    columns = metadata.get_metadata(catalogue, "data", "ds1", plugin="DID_COLUMN")
    assert columns["did_type"] == "DATASET" and columns["account"] == "root" and columns["is_open"] is True


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("run.number", 1, InvalidMetadata),
        ("", 1, InvalidMetadata),
        ("bad key", 1, InvalidMetadata),
        ("nested", {"a": {"b": 1}}, InvalidMetadata),
        ("deeper", [{"a": [{"b": 1}]}], InvalidMetadata),
        ("nan", float("nan"), InvalidMetadata),
        ("huge", 2**60, InvalidMetadata),
        ("long", "x" * 4001, InvalidMetadata),
    ],
)
def test_bad_keys_and_values_are_refused(catalogue, key, value, error):
    with pytest.raises(error):
        metadata.set_metadata(catalogue, "data", "ds1", key, value)


def test_metadata_of_unknown_did(catalogue):
    with pytest.raises(DataIdentifierNotFound):
        metadata.set_metadata(catalogue, "data", "nope", "k", 1)
    with pytest.raises(DataIdentifierNotFound):
        metadata.get_metadata(catalogue, "data", "nope")


TURTLE = """@prefix dc: <http://purl.org/dc/elements/1.1/> .
<urn:x> dc:title "A title" ."""
RDFXML = """<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <rdf:Description rdf:about="urn:x"><dc:title>A title</dc:title></rdf:Description>
</rdf:RDF>"""


@pytest.mark.parametrize("fmt,content", [("turtle", TURTLE), ("rdfxml", RDFXML)])
def test_rdf_documents_are_validated_and_returned(catalogue, fmt, content):
    metadata.set_document(catalogue, "data", "ds1", fmt, content)
    assert metadata.get_document(catalogue, "data", "ds1", fmt) == content
    graph = metadata.get_document(catalogue, "data", "ds1", fmt, parsed=True)
    assert isinstance(graph, rdflib.Graph)
    assert str(graph.value(rdflib.URIRef("urn:x"), rdflib.DC.title)) == "A title"
    with pytest.raises(InvalidMetadata, match="does not parse"):
        metadata.set_document(catalogue, "data", "ds1", fmt, content[:-12])


def test_json_documents(catalogue):
    metadata.set_document(catalogue, "data", "ds1", "json", {"creators": ["Doe, Jane"], "n": 1})
    assert metadata.get_document(catalogue, "data", "ds1", "json", parsed=True) == {
        "creators": ["Doe, Jane"],
        "n": 1,
    }
    assert metadata.list_documents(catalogue, "data", "ds1") == ["json"]
    with pytest.raises(InvalidMetadata):
        metadata.set_document(catalogue, "data", "ds1", "json", "{not json")
    with pytest.raises(InvalidMetadata):
        metadata.set_document(catalogue, "data", "ds1", "yaml", "a: 1")
    metadata.delete_document(catalogue, "data", "ds1", "json")
    with pytest.raises(KeyNotFound):
        metadata.get_document(catalogue, "data", "ds1", "json")


# --- filter parsing (no database) ------------------------------------------------------------
def conditions(text):
    return [
        [(c.key, c.op, c.value) for c in group.conditions] for group in metadata_filter.parse_filters(text)
    ]


def test_string_dialect_parses_and_types_values():
    assert conditions("run>=3,project=e2e*;calibrated=true") == [
        [("run", ">=", 3), ("project", "=", "e2e*")],
        [("calibrated", "=", True)],
    ]
    assert conditions("10 < length <= 100") == [[("length", ">", 10), ("length", "<=", 100)]]
    assert conditions("created_after=2024-01-01") == [[("created_at", ">=", datetime(2024, 1, 1))]]
    assert conditions("name=*") == [[]]
    assert conditions("title==a<b") == [[("title", "=", "a<b")]]
    groups = metadata_filter.parse_filters("type=file,run=1;x=2")
    assert [g.types for g in groups] == [metadata_filter.TYPE_CHOICES["file"], None]


def test_rest_dict_form_matches_the_string_form():
    rest = metadata_filter.parse_rest_filters(
        "[{'length.gt': '5', 'project': 'e2e', 'name': '*'}, {'run_number': '3', 'name': '*'}]"
    )
    assert rest == metadata_filter.parse_filters("length>5,project=e2e;run_number=3")
    assert metadata_filter.parse_rest_filters('{"run.lte": 7, "ok": true}') == metadata_filter.parse_filters(
        "run<=7,ok=true"
    )


@pytest.mark.parametrize(
    "text",
    [
        "run",
        "run=",
        "run>1,run>2",
        "run.x=1",
        "1=run",
        "name>a",
        "type=banana",
        "type>file",
        "length=abc",
        "created_at>yesterday",
        "is_open=maybe",
        "title>a*",
        "1 < run > 3",
        "bytes=1;",
        "availability=SOMETIMES",
    ],
)
def test_bad_filters_raise_syntax_errors(text):
    with pytest.raises(DIDFilterSyntaxError):
        metadata_filter.parse_filters(text)


@pytest.mark.parametrize("text", ["[1, 2]", "__import__('os')", "{'a.zz': 1}", "'str'"])
def test_bad_rest_filters(text):
    with pytest.raises(DIDFilterSyntaxError):
        metadata_filter.parse_rest_filters(text)


def test_unknown_did_type_argument(catalogue):
    with pytest.raises(DIDFilterSyntaxError):
        list(metadata_filter.list_dids(catalogue, "data", "run=1", did_type="everything"))
