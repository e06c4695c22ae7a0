"""Dublin Core and DataCite crosswalks: schema-valid, escaped, carrying the PID and landing page."""

from __future__ import annotations

import pytest
from lxml import etree

from datamgmt.publishing import datacite, dublincore
from datamgmt.publishing.records import Person
from datamgmt.publishing.xmlutil import DC
from tests.pid_doubles.samples import share
from tests.schemas.validation import validate_payload


@pytest.mark.parametrize("kind", [0, 1, 2], ids=["doi", "handle", "local"])
def test_every_payload_validates_against_its_own_schema(kind: int) -> None:
    record = share(7, pid_kind=kind)
    for element in (dublincore.oai_dc(record), datacite.resource(record), datacite.oai_datacite(record)):
        validate_payload(element)


def test_oai_dc_escapes_markup_and_drops_control_characters() -> None:
    record = share(1)
    text = etree.tostring(dublincore.oai_dc(record), encoding="unicode")
    assert "&lt;calibration&gt; &amp; friends" in text
    assert "\x07" not in text
    parsed = etree.fromstring(text.encode())
    assert parsed.findtext(f"{{{DC}}}title") == "Run 1 <calibration> & friends"
    assert parsed.findtext(f"{{{DC}}}description") == "Raw data ]]> with markup <b>bold</b>"


def test_oai_dc_identifiers_are_the_resolvable_pid_then_the_landing_page() -> None:
    root = dublincore.oai_dc(share(0))
    identifiers = [element.text for element in root.iter(f"{{{DC}}}identifier")]
    assert identifiers == [
        "https://doi.org/10.5072/ds-0",
        "https://data.example.org/share/share-000000?a=1&b=2",
    ]
    assert [e.text for e in root.iter(f"{{{DC}}}creator")] == ["Doe, Jane", "Roe, Richard"]
    assert root.findtext(f"{{{DC}}}rights") == "CC-BY-4.0"
    assert root.findtext(f"{{{DC}}}type") == "Collection"


def test_datacite_fills_mandatory_properties_the_submitter_left_out() -> None:
    record = share(
        2, creators=[], publisher="", publication_year="next year", title="", language="not a tag!"
    )
    fields = datacite.kernel_fields(record)
    assert fields.creators == [Person(datacite.UNAVAILABLE)]
    assert fields.publisher == datacite.UNAVAILABLE
    assert fields.publication_year == "2024"
    assert fields.titles == [record.name]
    assert fields.language is None
    validate_payload(datacite.resource(record))


def test_datacite_identifier_type_follows_the_pid_scheme() -> None:
    assert datacite.kernel_fields(share(0)).identifier_type == "DOI"
    assert datacite.kernel_fields(share(1)).identifier_type == "Handle"
    local = datacite.kernel_fields(share(2))
    assert (local.identifier_type, local.identifier) == ("URL", share(2).landing_url)
    assert local.alternate_identifiers == [("21.T99999/ds-2", "Local")]


def test_datacite_json_attributes_carry_the_mandatory_rest_fields() -> None:
    attrs = datacite.attributes(share(4, type="Software"), "https://landing/4", doi="10.5072/new")
    assert attrs["url"] == "https://landing/4"
    assert attrs["creators"] == [{"name": "Doe, Jane"}, {"name": "Roe, Richard"}]
    assert attrs["titles"][0]["title"].startswith("Run 4")
    assert attrs["publisher"] == "Example Lab"
    assert attrs["publicationYear"] == 2024
    assert attrs["types"] == {"resourceTypeGeneral": "Software", "resourceType": "Software"}
    assert attrs["sizes"] == ["2001 bytes", "2 files"]
    assert attrs["schemaVersion"] == "http://datacite.org/schema/kernel-4"


def test_the_validator_rejects_an_invalid_payload() -> None:
    broken = datacite.resource(share(0))
    broken.remove(broken.find("{http://datacite.org/schema/kernel-4}publisher"))
    with pytest.raises(AssertionError, match="publisher"):
        validate_payload(broken)
