"""Crosswalk from a share record to DataCite kernel-4: the XML form and the REST JSON:API form.

Both forms are built from one intermediate (:func:`kernel_fields`) so the record a
harvester reads at ``/oai_pmh`` and the one DataCite registers never disagree.
Mandatory properties the submitter left out get DataCite's standard ``(:unav)`` value.
The XML is written as text (harvests serialize it for every record); attribute values
all come from fixed vocabularies, so only element text needs escaping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lxml import etree

from datamgmt.publishing.dublincore import DCMI_TYPES
from datamgmt.publishing.records import Person, RelatedIdentifier, ShareRecord
from datamgmt.publishing.xmlutil import (
    DATACITE,
    DATACITE_SCHEMA,
    OAI_DATACITE,
    OAI_DATACITE_SCHEMA,
    XSI,
    escape_text,
    schema_location,
    text_element,
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
#: relatedIdentifierType and relationType of kernel-4 (include/datacite-relat*Type-v4.xsd).
RELATED_IDENTIFIER_TYPES = frozenset(
    [
        "ARK",
        "arXiv",
        "bibcode",
        "CSTR",
        "DOI",
        "EISSN",
        "Handle",
        "IGSN",
        "ISBN",
        "ISSN",
        "ISTC",
        "LISSN",
        "LSID",
        "PMID",
        "PURL",
        "RAiD",
        "RRID",
        "SWHID",
        "UPC",
        "URL",
        "URN",
    ]
)
RELATION_TYPES = frozenset(
    [
        "IsCitedBy",
        "Cites",
        "IsSupplementTo",
        "IsSupplementedBy",
        "IsContinuedBy",
        "Continues",
        "IsNewVersionOf",
        "IsPreviousVersionOf",
        "IsPartOf",
        "HasPart",
        "IsPublishedIn",
        "IsReferencedBy",
        "References",
        "IsDocumentedBy",
        "Documents",
        "IsCompiledBy",
        "Compiles",
        "IsVariantFormOf",
        "IsOriginalFormOf",
        "IsIdenticalTo",
        "HasMetadata",
        "IsMetadataFor",
        "Reviews",
        "IsReviewedBy",
        "IsDerivedFrom",
        "IsSourceOf",
        "Describes",
        "IsDescribedBy",
        "HasVersion",
        "IsVersionOf",
        "Requires",
        "IsRequiredBy",
        "Obsoletes",
        "IsObsoletedBy",
        "Collects",
        "IsCollectedBy",
        "HasTranslation",
        "IsTranslationOf",
        "Other",
    ]
)
ORCID_SCHEME_URI = "https://orcid.org"
_YEAR = re.compile(r"\d{4}")
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")
_IDENTIFIER_TYPES = {"doi": "DOI", "handle": "Handle"}
_RESOURCE_LOCATION = f'xsi:schemaLocation="{schema_location(DATACITE, DATACITE_SCHEMA)}"'
#: ``<resource>`` as a document root, and nested in oai_datacite where ``xsi`` is already declared.
_RESOURCE_ROOT = f'<resource xmlns="{DATACITE}" xmlns:xsi="{XSI}" {_RESOURCE_LOCATION}>'
_RESOURCE_NESTED = f'<resource xmlns="{DATACITE}" {_RESOURCE_LOCATION}>'
_OAI_DATACITE_START = (
    f'<oai_datacite xmlns="{OAI_DATACITE}" xmlns:xsi="{XSI}" '
    f'xsi:schemaLocation="{schema_location(OAI_DATACITE, OAI_DATACITE_SCHEMA)}">'
    "<schemaVersion>4</schemaVersion>"
)


@dataclass(frozen=True, slots=True)
class KernelFields:
    """The DataCite properties of one record, independent of the serialization."""

    identifier: str
    identifier_type: str
    alternate_identifiers: list[tuple[str, str]]
    creators: list[Person]
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
    related: list[RelatedIdentifier]


def kernel_fields(record: ShareRecord, pid: str | None = None) -> KernelFields:
    """Map a record onto the kernel-4 properties; ``pid`` overrides ``record.pid`` while minting."""
    pid = pid or record.pid
    if record.pid_type in _IDENTIFIER_TYPES:
        identifier, identifier_type, alternates = pid, _IDENTIFIER_TYPES[record.pid_type], []
    else:
        # A local PID has no global resolver: the landing page is the identifier.
        identifier, identifier_type, alternates = record.landing_url, "URL", [(pid, "Local")]
    type_ = record.first("type")
    declared_type = record.first("resource_type_general") or type_
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
        creators=record.people("creator") or [Person(UNAVAILABLE)],
        titles=record.values("title") or [record.name],
        publisher=record.first("publisher") or UNAVAILABLE,
        publication_year=year if year and _YEAR.fullmatch(year) else str(record.datestamp.year),
        resource_type_general=general,
        resource_type=type_ or record.did_type.title(),
        subjects=record.values("subject"),
        dates=record.values("date") or [record.datestamp.date().isoformat()],
        language=language if language and _LANGUAGE.fullmatch(language) else None,
        rights=record.values("rights"),
        descriptions=record.values("description"),
        sizes=sizes,
        related=record.related_identifiers(),
    )


def missing_mandatory(record: ShareRecord) -> list[str]:
    """What a record lacks to be a true DataCite record, in words for the publisher; empty when complete.

    Of kernel-4's mandatory properties, identifier, publication year and resource type are the
    service's to fill in (the PID, the year of publishing, the DID's type); creator, title and
    publisher only the data's owner can give, and an empty collection publishes nothing.
    """
    keys = [key for key in ("creator", "title", "publisher") if not record.values(key)]
    missing = [f"metadata {', '.join(keys)}"] if keys else []
    year = record.first("publication_year")
    if year is not None and not _YEAR.fullmatch(year):
        missing.append(f"a 4-digit 'publication_year' (not {year[:20]!r})")
    declared = record.first("resource_type_general")
    if declared is not None and declared not in RESOURCE_TYPES_GENERAL:
        missing.append(f"a DataCite 'resource_type_general' (not {declared[:40]!r})")
    for item in record.related_identifiers():
        if item.identifier_type not in RELATED_IDENTIFIER_TYPES or item.relation_type not in RELATION_TYPES:
            missing.append(
                f"a DataCite type and relation for related identifier {item.identifier[:60]!r} "
                f"(not {item.identifier_type[:20]!r}/{item.relation_type[:30]!r})"
            )
    if not record.files:
        missing.append("files (the collection holds none)")
    return missing


def _wrapped(wrapper: str, tag: str, values: list[str], attrs: str = "") -> str:
    """``<wrapper><tag attrs>value</tag>…</wrapper>``, or nothing for no values (kernel-4 forbids empty lists)."""
    if not values:
        return ""
    items = "".join(f"<{tag}{attrs}>{escape_text(value)}</{tag}>" for value in values)
    return f"<{wrapper}>{items}</{wrapper}>"


def _creator_xml(person: Person) -> str:
    orcid = (
        f'<nameIdentifier nameIdentifierScheme="ORCID" schemeURI="{ORCID_SCHEME_URI}">{person.orcid_url}</nameIdentifier>'
        if person.orcid
        else ""
    )
    affiliations = "".join(f"<affiliation>{escape_text(name)}</affiliation>" for name in person.affiliations)
    return f"<creator><creatorName>{escape_text(person.name)}</creatorName>{orcid}{affiliations}</creator>"


def _creator_json(person: Person) -> dict[str, Any]:
    creator: dict[str, Any] = {"name": person.name}
    if person.orcid:
        creator["nameIdentifiers"] = [
            {
                "nameIdentifier": person.orcid_url,
                "nameIdentifierScheme": "ORCID",
                "schemeUri": ORCID_SCHEME_URI,
            }
        ]
    if person.affiliations:
        creator["affiliation"] = [{"name": name} for name in person.affiliations]
    return creator


def _resource_xml(record: ShareRecord, start: str) -> str:
    """``<resource>`` opened by ``start``, which declares only the namespaces not yet in scope."""
    fields = kernel_fields(record)
    alternates = "".join(
        f'<alternateIdentifier alternateIdentifierType="{kind}">{escape_text(value)}</alternateIdentifier>'
        for value, kind in fields.alternate_identifiers
    )
    creators = "".join(_creator_xml(person) for person in fields.creators)
    related = "".join(
        f'<relatedIdentifier relatedIdentifierType="{item.identifier_type}" relationType="{item.relation_type}">'
        f"{escape_text(item.identifier)}</relatedIdentifier>"
        for item in fields.related
    )
    return "".join(
        [
            start,
            f'<identifier identifierType="{fields.identifier_type}">{escape_text(fields.identifier)}</identifier>',
            f"<creators>{creators}</creators>",
            _wrapped("titles", "title", fields.titles),
            text_element("publisher", fields.publisher),
            text_element("publicationYear", fields.publication_year),
            f'<resourceType resourceTypeGeneral="{fields.resource_type_general}">'
            f"{escape_text(fields.resource_type)}</resourceType>",
            _wrapped("subjects", "subject", fields.subjects),
            _wrapped("dates", "date", fields.dates, ' dateType="Issued"'),
            text_element("language", fields.language) if fields.language else "",
            f"<alternateIdentifiers>{alternates}</alternateIdentifiers>" if alternates else "",
            _wrapped("sizes", "size", fields.sizes),
            f"<relatedIdentifiers>{related}</relatedIdentifiers>" if related else "",
            _wrapped("rightsList", "rights", fields.rights),
            _wrapped("descriptions", "description", fields.descriptions, ' descriptionType="Abstract"'),
            "</resource>",
        ]
    )


def resource_xml(record: ShareRecord) -> str:
    """The kernel-4 ``<resource>`` element as XML text, valid against metadata.xsd."""
    return _resource_xml(record, _RESOURCE_ROOT)


def resource(record: ShareRecord) -> etree._Element:
    """The kernel-4 ``<resource>`` element as a tree, for callers that inspect or edit it."""
    return etree.fromstring(resource_xml(record))


def oai_datacite_xml(record: ShareRecord, datacentre_symbol: str | None = None) -> str:
    """The ``oai_datacite`` wrapper (OpenAIRE's format) as XML text: symbol, schema version, the resource."""
    return "".join(
        [
            _OAI_DATACITE_START,
            text_element("datacentreSymbol", datacentre_symbol or record.pid_service),
            "<payload>",
            _resource_xml(record, _RESOURCE_NESTED),
            "</payload></oai_datacite>",
        ]
    )


def oai_datacite(record: ShareRecord, datacentre_symbol: str | None = None) -> etree._Element:
    """The ``oai_datacite`` wrapper as a tree, for callers that inspect or edit it."""
    return etree.fromstring(oai_datacite_xml(record, datacentre_symbol))


def attributes(record: ShareRecord, landing_url: str, doi: str | None = None) -> dict[str, Any]:
    """The JSON:API ``attributes`` of a DOI for the DataCite REST API (without ``event``/``doi``).

    ``doi`` is the DOI being registered when it differs from ``record.pid`` (while minting).
    """
    fields = kernel_fields(record, doi)
    attrs: dict[str, Any] = {
        "url": landing_url,
        "creators": [_creator_json(person) for person in fields.creators],
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
        "relatedIdentifiers": [
            {
                "relatedIdentifier": item.identifier,
                "relatedIdentifierType": item.identifier_type,
                "relationType": item.relation_type,
            }
            for item in fields.related
        ],
        "schemaVersion": SCHEMA_VERSION,
    }
    if fields.language:
        attrs["language"] = fields.language
    return attrs
