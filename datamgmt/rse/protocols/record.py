"""Protocol records as the catalogue stores them, and the choice between them.

A record has Rucio's shape: ``scheme``, ``hostname``, ``port``, ``prefix``, ``impl``, per-domain
operation priorities and ``extended_attributes``. A priority is a positive integer (lower is
preferred); ``0``, ``None`` or a missing key means the operation is not offered in that domain.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from datamgmt.exceptions import InvalidObject, InvalidValueForKey, RSEProtocolNotSupported
from datamgmt.rse.lfn2pfn import normalize_prefix

#: Operations each domain can offer, as in Rucio's ``domains`` column.
OPERATIONS: dict[str, tuple[str, ...]] = {
    "lan": ("read", "write", "delete"),
    "wan": ("read", "write", "delete", "third_party_copy_read", "third_party_copy_write"),
}

#: Older records carry one ``third_party_copy`` priority for both directions.
_LEGACY_TPC = "third_party_copy"


@dataclass(frozen=True)
class ProtocolRecord:
    """One way of reaching an RSE's storage."""

    scheme: str
    hostname: str = "localhost"
    port: int = 0
    prefix: str = "/"
    impl: str = ""
    domains: Mapping[str, Mapping[str, int | None]] = field(default_factory=dict)
    extended_attributes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.scheme:
            raise InvalidObject("A protocol record needs a scheme")
        object.__setattr__(self, "scheme", self.scheme.lower())
        object.__setattr__(self, "port", int(self.port or 0))
        object.__setattr__(self, "prefix", normalize_prefix(self.prefix))
        object.__setattr__(self, "extended_attributes", dict(self.extended_attributes or {}))

    @classmethod
    def from_mapping(cls, record: ProtocolRecord | Mapping[str, Any] | Any) -> ProtocolRecord:
        """Accept a record, a dict (unknown keys such as ``rse_id`` are ignored) or a dataclass."""
        if isinstance(record, cls):
            return record
        if dataclasses.is_dataclass(record) and not isinstance(record, type):
            record = dataclasses.asdict(record)
        if not isinstance(record, Mapping) or not record.get("scheme"):
            raise InvalidObject(f"Not a protocol record (a scheme is required): {record!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in record.items() if key in known and value is not None})

    def priority(self, operation: str, domain: str) -> int | None:
        """The priority of ``operation`` in ``domain``, or ``None`` when it is not offered."""
        if domain not in OPERATIONS or operation not in OPERATIONS[domain]:
            raise InvalidValueForKey(f"Unknown operation {operation!r} in domain {domain!r}")
        offered = self.domains.get(domain) or {}
        value = offered.get(operation)
        if value is None and operation.startswith(_LEGACY_TPC):
            value = offered.get(_LEGACY_TPC)
        return int(value) if value else None


def protocols_ordered(
    protocols: Iterable[ProtocolRecord | Mapping[str, Any]],
    operation: str,
    domain: str = "wan",
    schemes: Collection[str] | None = None,
) -> list[ProtocolRecord]:
    """The records that offer ``operation`` in ``domain``, best first.

    Equal priorities keep their input order, so a caller that wants load spreading shuffles first.
    """
    offered = []
    for position, raw in enumerate(protocols):
        record = ProtocolRecord.from_mapping(raw)
        priority = record.priority(operation, domain)
        if priority is not None and (schemes is None or record.scheme in schemes):
            offered.append((priority, position, record))
    return [record for _, _, record in sorted(offered, key=lambda item: item[:2])]


def select_protocol(
    protocols: Iterable[ProtocolRecord | Mapping[str, Any]],
    operation: str,
    domain: str = "wan",
    schemes: Collection[str] | None = None,
) -> ProtocolRecord:
    """The preferred record for ``operation`` in ``domain`` (lowest positive priority)."""
    ordered = protocols_ordered(protocols, operation, domain, schemes)
    if not ordered:
        wanted = f" with scheme in {sorted(schemes)}" if schemes is not None else ""
        raise RSEProtocolNotSupported(f"No protocol supports {operation!r} in domain {domain!r}{wanted}")
    return ordered[0]
