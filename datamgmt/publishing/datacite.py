"""Crosswalk from a share record to DataCite kernel-4: the XML form and the REST JSON:API form.

Both forms are built from one intermediate (:func:`kernel_fields`) so the record a
harvester reads at ``/oai_pmh`` and the one DataCite registers never disagree.
Mandatory properties the submitter left out get DataCite's standard ``(:unav)`` value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lxml import etree

from datamgmt.publishing.dublincore import DCMI_TYPES
from datamgmt.publishing.records import ShareRecord
from datamgmt.publishing.xmlutil import (
    DATACITE,
    DATACITE_SCHEMA,
    OAI_DATACITE,
    OAI_DATACITE_SCHEMA,
    XSI,
    XSI_SCHEMA_LOCATION,
    schema_location,
    xml_text,
)

SCHEMA_VERSION = "http://datacite.org/schema/kernel-4"
UNAVAILABLE = "(:unav)"

#: resourceTypeGeneral values of kernel-4 (include/datacite-resourceType-v4.xsd).
RESOURCE_TYPES_GENERAL = frozenset(
    [
        "Audiovisual",
        "Award",
        "Book",
        "BookChapter",
        "Collection",
        "ComputationalNotebook",
        "ConferencePaper",
        "ConferenceProceeding",
        "DataPaper",
        "Dataset",
        "Dissertation",
        "Event",
        "Image",
        "Instrument",
        "InteractiveResource",
        "Journal",
        "JournalArticle",
        "Model",
        "OutputManagementPlan",
        "PeerReview",
        "PhysicalObject",
        "Poster",
        "Preprint",
        "Presentation",
        "Project",
        "Report",
        "Service",
        "Software",
        "Sound",
        "Standard",
        "StudyRegistration",
        "Text",
        "Workflow",
        "Other",
    ]
)
_YEAR = re.compile(r"\d{4}")
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")
_IDENTIFIER_TYPES = {"doi": "DOI", "handle": "Handle"}


@dataclass(frozen=True, slots=True)
class KernelFields:
    """The DataCite properties of one record, independent of the serialization."""

    identifier: str
    identifier_type: str
    alternate_identifiers: list[tuple[str, str]]
    creators: list[str]
    titles: list[str]
    publisher: str
    publication_year: str
    resource_type_general: str
    resource_type: str
    subjects: list[str]
    dates: list[str]
    language: str | None
    rights: list[str]
    descriptions: list[str]
    sizes: list[str]


def kernel_fields(record: ShareRecord, pid: str | None = None) -> KernelFields:
    """Map a record onto the kernel-4 properties; ``pid`` overrides ``record.pid`` while minting."""
    pid = pid or record.pid
    if record.pid_type in _IDENTIFIER_TYPES:
        identifier, identifier_type, alternates = pid, _IDENTIFIER_TYPES[record.pid_type], []
    else:
        # A local PID has no global resolver: the landing page is the identifier.
        identifier, identifier_type, alternates = record.landing_url, "URL", [(pid, "Local")]
    declared_type = record.first("resource_type_general") or record.first("type")
    general = (
        declared_type
        if declared_type in RESOURCE_TYPES_GENERAL
        else DCMI_TYPES.get(record.did_type.upper(), "Dataset")
    )
    year = record.first("publication_year")
    language = record.first("language")
    sizes = [f"{record.total_bytes} bytes", f"{len(record.files)} files"] if record.files else []
    return KernelFields(
        identifier=identifier,
        identifier_type=identifier_type,
        alternate_identifiers=alternates,
        creators=record.values("creator") or [UNAVAILABLE],
        titles=record.values("title") or [record.name],
        publisher=record.first("publisher") or UNAVAILABLE,
        publication_year=year if year and _YEAR.fullmatch(year) else str(record.datestamp.year),
        resource_type_general=general,
        resource_type=record.first("type") or record.did_type.title(),
        subjects=record.values("subject"),
        dates=record.values("date") or [record.datestamp.date().isoformat()],
        language=language if language and _LANGUAGE.fullmatch(language) else None,
        rights=record.values("rights"),
        descriptions=record.values("description"),
        sizes=sizes,
    )


def _add(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{DATACITE}}}{tag}", attrs)
    if text is not None:
        element.text = xml_text(text)
    return element


def _add_list(parent: etree._Element, wrapper: str, tag: str, values: list[str], **attrs: str) -> None:
    if values:
        container = _add(parent, wrapper)
        for value in values:
            _add(container, tag, value, **attrs)


def resource(record: ShareRecord) -> etree._Element:
    """The kernel-4 ``<resource>`` element, valid against metadata.xsd."""
    fields = kernel_fields(record)
    root = etree.Element(f"{{{DATACITE}}}resource", nsmap={None: DATACITE, "xsi": XSI})
    root.set(XSI_SCHEMA_LOCATION, schema_location(DATACITE, DATACITE_SCHEMA))
    _add(root, "identifier", fields.identifier, identifierType=fields.identifier_type)
    creators = _add(root, "creators")
    for name in fields.creators:
        _add(_add(creators, "creator"), "creatorName", name)
    _add_list(root, "titles", "title", fields.titles)
    _add(root, "publisher", fields.publisher)
    _add(root, "publicationYear", fields.publication_year)
    _add(root, "resourceType", fields.resource_type, resourceTypeGeneral=fields.resource_type_general)
    _add_list(root, "subjects", "subject", fields.subjects)
    _add_list(root, "dates", "date", fields.dates, dateType="Issued")
    if fields.language:
        _add(root, "language", fields.language)
    if fields.alternate_identifiers:
        alternates = _add(root, "alternateIdentifiers")
        for value, kind in fields.alternate_identifiers:
            _add(alternates, "alternateIdentifier", value, alternateIdentifierType=kind)
    _add_list(root, "sizes", "size", fields.sizes)
    _add_list(root, "rightsList", "rights", fields.rights)
    _add_list(root, "descriptions", "description", fields.descriptions, descriptionType="Abstract")
    return root


def oai_datacite(record: ShareRecord, datacentre_symbol: str | None = None) -> etree._Element:
    """The ``oai_datacite`` wrapper (OpenAIRE's format): symbol, schema version, the resource."""
    root = etree.Element(f"{{{OAI_DATACITE}}}oai_datacite", nsmap={None: OAI_DATACITE, "xsi": XSI})
    root.set(XSI_SCHEMA_LOCATION, schema_location(OAI_DATACITE, OAI_DATACITE_SCHEMA))
    etree.SubElement(root, f"{{{OAI_DATACITE}}}schemaVersion").text = "4"
    symbol = etree.SubElement(root, f"{{{OAI_DATACITE}}}datacentreSymbol")
    symbol.text = xml_text(datacentre_symbol or record.pid_service)
    etree.SubElement(root, f"{{{OAI_DATACITE}}}payload").append(resource(record))
    return root


def attributes(record: ShareRecord, landing_url: str, doi: str | None = None) -> dict[str, Any]:
    """The JSON:API ``attributes`` of a DOI for the DataCite REST API (without ``event``/``doi``).

    ``doi`` is the DOI being registered when it differs from ``record.pid`` (while minting).
    """
    fields = kernel_fields(record, doi)
    attrs: dict[str, Any] = {
        "url": landing_url,
        "creators": [{"name": name} for name in fields.creators],
        "titles": [{"title": title} for title in fields.titles],
        "publisher": fields.publisher,
        "publicationYear": int(fields.publication_year),
        "types": {"resourceTypeGeneral": fields.resource_type_general, "resourceType": fields.resource_type},
        "subjects": [{"subject": subject} for subject in fields.subjects],
        "dates": [{"date": date, "dateType": "Issued"} for date in fields.dates],
        "rightsList": [{"rights": rights} for rights in fields.rights],
        "descriptions": [
            {"description": text, "descriptionType": "Abstract"} for text in fields.descriptions
        ],
        "sizes": fields.sizes,
        "schemaVersion": SCHEMA_VERSION,
    }
    if fields.language:
        attrs["language"] = fields.language
    return attrs
