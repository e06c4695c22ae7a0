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

    def values(self, key: str) -> list[str]:
        """All non-empty values of a metadata field, whether given singly or as a list.

        ``values("creator")`` reads ``creator`` and then ``creators``.
        """
        found: list[str] = []
        for name in dict.fromkeys((key, key if key.endswith("s") else key + "s")):
            raw = self.metadata.get(name)
            items = [] if raw is None else [raw] if isinstance(raw, str | int) else list(raw)
            found.extend(str(item) for item in items if str(item).strip())
        return found

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
