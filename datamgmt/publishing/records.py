"""The plain data a published share is disseminated from.

A :class:`ShareRecord` is a snapshot of one share as the harvesters see it: identity,
PID, datestamp, descriptive metadata and the files it holds.  It is immutable so a
page of records can be serialized while the catalogue changes underneath.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

#: One setTag of an OAI setSpec [OAI-PMH 2.6].
SET_TAG = re.compile(r"[A-Za-z0-9\-_.!~*'()]+")

PIDType = Literal["doi", "handle", "local"]


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a share, with the size and checksum the catalogue verified."""

    name: str
    bytes: int
    adler32: str


#: The key naming an item of a list-valued field when the item is an object, per field.
_ITEM_TEXT = {
    "creator": "name",
    "contributor": "name",
    "subject": "subject",
    "related_identifier": "identifier",
}
_ORCID = re.compile(r"(?:https?://orcid\.org/)?(\d{4}-\d{4}-\d{4}-\d{3}[\dX])")


@dataclass(frozen=True, slots=True)
class Person:
    """A creator: ``name`` as "Family, Given" or an organisation, with affiliations and an ORCID iD."""

    name: str
    affiliations: tuple[str, ...] = ()
    orcid: str | None = None

    @property
    def orcid_url(self) -> str | None:
        return f"https://orcid.org/{self.orcid}" if self.orcid else None


@dataclass(frozen=True, slots=True)
class RelatedIdentifier:
    """Another resource this one relates to, in DataCite's terms (``DOI``/``URL``…, ``IsSupplementTo``…)."""

    identifier: str
    identifier_type: str
    relation_type: str


def _items(raw: Any) -> list[Any]:
    return [] if raw is None else list(raw) if isinstance(raw, list | tuple) else [raw]


def _text_list(raw: Any) -> list[str]:
    return [str(item).strip() for item in _items(raw) if str(item).strip()]


@dataclass(frozen=True, slots=True)
class ShareRecord:
    """A published share as disseminated by OAI-PMH and sent to PID services.

    ``metadata`` holds the descriptive fields under their Dublin Core names (``title``,
    ``creator``, ``subject``, ``description``, ``date``, ``rights``, ``type``,
    ``publisher``, ``language``) plus ``publication_year``; each may be a string or a
    list of strings, and the plural spelling (``creators``, ``subjects``) is accepted.
    ``sets`` lists the minimal setSpecs of the record (see :func:`scope_set_spec`).
    """

    share_id: str
    scope: str
    name: str
    did_type: str
    pid: str
    pid_type: PIDType
    pid_service: str
    landing_url: str
    datestamp: datetime
    deleted: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)
    files: Sequence[FileEntry] = ()
    sets: Sequence[str] = ()

    def __post_init__(self) -> None:
        if self.datestamp.tzinfo is None:
            raise ValueError("ShareRecord.datestamp must be timezone-aware (UTC)")
        object.__setattr__(self, "datestamp", self.datestamp.astimezone(UTC))
        object.__setattr__(self, "files", tuple(self.files))
        object.__setattr__(self, "sets", tuple(self.sets))

    @property
    def sort_key(self) -> tuple[datetime, str]:
        """The harvest order: chronological, ties broken by share id (keyset pagination)."""
        return (self.datestamp, self.share_id)

    def items(self, key: str) -> list[Any]:
        """The raw items of a field, given singly or as a list: ``items("creator")`` reads
        ``creator`` then ``creators``. An item is text, a number, or an object (JSON metadata)."""
        found: list[Any] = []
        for name in dict.fromkeys((key, key if key.endswith("s") else key + "s")):
            found.extend(_items(self.metadata.get(name)))
        return found

    def values(self, key: str) -> list[str]:
        """All non-empty values of a metadata field as text; an object item gives its name
        (``name`` of a creator, ``subject`` of a subject, ``identifier`` of a related identifier)."""
        found = []
        for item in self.items(key):
            text = item.get(_ITEM_TEXT.get(key, "name")) if isinstance(item, dict) else item
            if text is not None and str(text).strip():
                found.append(str(text).strip())
        return found

    def people(self, key: str = "creator") -> list[Person]:
        """Creators with their affiliations and ORCID iDs (an ORCID given as URL or bare iD)."""
        people = []
        for item in self.items(key):
            if not isinstance(item, dict):
                if str(item).strip():
                    people.append(Person(str(item).strip()))
                continue
            name = str(item.get("name") or "").strip()
            if not name:
                continue
            match = _ORCID.fullmatch(str(item.get("orcid") or "").strip())
            affiliations = tuple(_text_list(item.get("affiliation")) + _text_list(item.get("affiliations")))
            people.append(Person(name, affiliations, match.group(1) if match else None))
        return people

    def related_identifiers(self) -> list[RelatedIdentifier]:
        """``related_identifiers`` items with identifier, type (default DOI) and relation (default References)."""
        related = []
        for item in self.items("related_identifier"):
            if isinstance(item, dict) and str(item.get("identifier") or "").strip():
                related.append(
                    RelatedIdentifier(
                        str(item["identifier"]).strip(),
                        str(item.get("type") or "DOI"),
                        str(item.get("relation") or "References"),
                    )
                )
        return related

    def first(self, key: str) -> str | None:
        """The first value of a metadata field, or None."""
        values = self.values(key)
        return values[0] if values else None

    @property
    def total_bytes(self) -> int:
        return sum(entry.bytes for entry in self.files)


def set_spec(*tags: str) -> str:
    """Join setTags into a setSpec, refusing tags the OAI-PMH grammar does not allow."""
    for tag in tags:
        if not SET_TAG.fullmatch(tag):
            raise ValueError(f"{tag!r} is not a valid OAI setTag")
    return ":".join(tags)


def scope_set_spec(scope: str) -> str:
    """The set of all shares in one scope, e.g. ``scope:user.jdoe``."""
    return set_spec("scope", scope)


def pid_service_set_spec(service: str) -> str:
    """The set of all shares published through one PID service, e.g. ``pidservice:local``."""
    return set_spec("pidservice", service)
