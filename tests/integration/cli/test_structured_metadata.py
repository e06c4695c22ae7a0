"""List-valued metadata (several creators with affiliation and ORCID, subjects, related identifiers)
set through the CLI and REST, published, and harvested valid in every crosswalk."""

from __future__ import annotations

import json
import urllib.request

import pytest
from lxml import etree

from tests.integration.cli.conftest import Live
from tests.integration.cli.test_user_commands import dataset, ok  # noqa: F401 - the fixture
from tests.schemas.validation import validate

pytestmark = pytest.mark.integration

CREATORS = [
    {"name": "Doe, Jane", "affiliation": "Example Lab", "orcid": "0000-0002-1825-0097"},
    {
        "name": "Roe, Richard",
        "affiliation": ["Univ. A", "Univ. B"],
        "orcid": "https://orcid.org/0000-0001-5109-3700",
    },
    {"name": "Detector Collaboration"},
]
DATACITE = "{http://datacite.org/schema/kernel-4}"
DC = "{http://purl.org/dc/elements/1.1/}"


def _harvest(live: Live, prefix: str) -> etree._Element:
    with urllib.request.urlopen(f"{live.url}/oai_pmh?verb=ListRecords&metadataPrefix={prefix}") as response:
        return validate(response.read())


def test_several_authors_subjects_and_relations_in_every_crosswalk(live: Live, dataset: str) -> None:  # noqa: F811
    ok(live.user("meta", "set", "--json", dataset, "creators", json.dumps(CREATORS)))
    for subject in ("physics", "detectors"):
        ok(live.user("meta", "set", dataset, "subjects", "--add", subject))
    scope, name = dataset.split(":")
    live.client.set_metadata(
        scope,
        name,
        "related_identifiers",
        [{"identifier": "10.1234/paper", "type": "DOI", "relation": "IsSupplementTo"}],
    )
    ok(live.user("meta", "set", dataset, "title", "Three authors"))
    ok(live.user("meta", "set", dataset, "publisher", "Example Lab"))
    assert json.loads(ok(live.user("meta", "get", dataset, "creators"))) == CREATORS
    assert live.client.get_metadata(scope, name)["subjects"] == ["physics", "detectors"]
    ok(live.user("publish", dataset))

    resource = _harvest(live, "oai_datacite").find(f".//{DATACITE}resource")
    creators = resource.findall(f"{DATACITE}creators/{DATACITE}creator")
    assert [creator.findtext(f"{DATACITE}creatorName") for creator in creators] == [
        c["name"] for c in CREATORS
    ]
    assert [creator.findtext(f"{DATACITE}nameIdentifier") for creator in creators] == [
        "https://orcid.org/0000-0002-1825-0097",
        "https://orcid.org/0000-0001-5109-3700",
        None,
    ]
    assert [a.text for a in creators[1].findall(f"{DATACITE}affiliation")] == ["Univ. A", "Univ. B"]
    assert [s.text for s in resource.iter(f"{DATACITE}subject")] == ["physics", "detectors"]
    related = resource.find(f"{DATACITE}relatedIdentifiers/{DATACITE}relatedIdentifier")
    assert related.text == "10.1234/paper" and related.get("relationType") == "IsSupplementTo"
    assert "{'name'" not in etree.tostring(resource, encoding="unicode")  # no Python list strings

    record = _harvest(live, "oai_dc")
    assert [c.text for c in record.iter(f"{DC}creator")] == [c["name"] for c in CREATORS]
    assert [s.text for s in record.iter(f"{DC}subject")] == ["physics", "detectors"]
    assert [r.text for r in record.iter(f"{DC}relation")] == ["https://doi.org/10.1234/paper"]


def test_malformed_json_value_is_a_usage_error(live: Live, dataset: str) -> None:  # noqa: F811
    result = live.user("meta", "set", "--json", dataset, "creators", "[{oops")
    assert result.exit_code == 2 and "not JSON" in result.stderr
    nested = live.user("meta", "set", "--json", dataset, "deep", '[{"a": {"b": {"c": 1}}}]')
    assert nested.exit_code == 1 and "nests too deep" in nested.stderr


def test_filters_find_a_value_inside_a_list(live: Live, dataset: str) -> None:  # noqa: F811
    """``subjects=physics`` finds a dataset whose subjects are ["physics", "astro"], through the
    CLI's ``--filter`` and the REST search that rucio-clients call."""
    ok(live.user("meta", "set", "--json", dataset, "subjects", '["physics", "astro"]'))
    ok(live.user("meta", "set", "--json", dataset, "runs", "[3, 7]"))
    ok(live.user("did", "add", "user.root:other", "--type", "dataset"))
    ok(live.user("meta", "set", "--json", "user.root:other", "subjects", '["chemistry"]'))

    def found(expression: str) -> list[str]:
        rows = ok(live.user("did", "list", "user.root", "--filter", expression, "--json")).splitlines()
        return sorted(json.loads(row)["name"] for row in rows)

    assert found("subjects=physics") == found("subjects=astro") == ["ds"]
    assert found("subjects=phys*") == ["ds"]
    assert found("subjects=chemistry") == ["other"]
    assert found("subjects!=physics") == ["other"]
    assert found("subjects=bio") == []
    assert found("runs=7") == found("runs>5") == ["ds"]
    assert found("runs>7") == []
    rest = live.client.search_dids("user.root", [{"subjects": "physics", "type": "dataset"}])
    assert [row["name"] for row in rest] == ["ds"]
