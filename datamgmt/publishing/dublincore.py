"""Crosswalk from a share record to unqualified Dublin Core (``oai_dc``)."""

from __future__ import annotations

from lxml import etree

from datamgmt.publishing.records import ShareRecord
from datamgmt.publishing.xmlutil import DC, OAI_DC, OAI_DC_SCHEMA, XSI, schema_location, text_element

_START = (
    f'<oai_dc:dc xmlns:oai_dc="{OAI_DC}" xmlns:dc="{DC}" xmlns:xsi="{XSI}" '
    f'xsi:schemaLocation="{schema_location(OAI_DC, OAI_DC_SCHEMA)}">'
)
_END = "</oai_dc:dc>"
#: DC elements filled straight from the metadata field of the same name, in output order.
_PLAIN_FIELDS = (
    "title",
    "creator",
    "subject",
    "description",
    "publisher",
    "date",
    "type",
    "language",
    "rights",
)

#: What a DID type is called in the DCMI Type Vocabulary when the metadata names no type.
DCMI_TYPES = {"FILE": "Dataset", "DATASET": "Dataset", "CONTAINER": "Collection"}


def dc_values(record: ShareRecord) -> list[tuple[str, str]]:
    """The (element, value) pairs of the record, identifiers last: the PID, then the landing page.

    Onedata's plugin does the same revision: whatever the submitter wrote, the published
    record carries the public URL and the PID so harvesters can cite and resolve it.
    """
    pairs: list[tuple[str, str]] = []
    for name in _PLAIN_FIELDS:
        values = record.values(name)
        if name == "title" and not values:
            values = [record.name]
        if name == "type" and not values:
            values = [DCMI_TYPES.get(record.did_type.upper(), "Dataset")]
        if name == "date" and not values:
            values = [record.datestamp.date().isoformat()]
        pairs.extend((name, value) for value in values)
    pairs.extend(
        (
            "relation",
            f"https://doi.org/{item.identifier}" if item.identifier_type == "DOI" else item.identifier,
        )
        for item in record.related_identifiers()
    )
    pairs.append(("identifier", pid_uri(record)))
    pairs.append(("identifier", record.landing_url))
    return pairs


def pid_uri(record: ShareRecord) -> str:
    """The PID as an actionable URI where the scheme has a resolver, else as stored."""
    if record.pid_type == "doi":
        return f"https://doi.org/{record.pid}"
    if record.pid_type == "handle":
        return f"https://hdl.handle.net/{record.pid}"
    return record.pid


def oai_dc_xml(record: ShareRecord) -> str:
    """The ``<oai_dc:dc>`` element of a record as XML text, valid against oai_dc.xsd."""
    return "".join([_START, *(text_element(f"dc:{name}", value) for name, value in dc_values(record)), _END])


def oai_dc(record: ShareRecord) -> etree._Element:
    """The ``<oai_dc:dc>`` element of a record as a tree, for callers that inspect or edit it."""
    return etree.fromstring(oai_dc_xml(record))
