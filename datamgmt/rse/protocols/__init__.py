"""Storage protocols and the factory that picks one for a protocol record.

The record's ``impl`` names the implementation: a registered short name (``posix``, ``gfal``,
``s3``) or a dotted path whose module part names one (``rucio.rse.protocols.gfal.Default`` and
``datamgmt.rse.protocols.posix.PosixProtocol`` both work, so Rucio records load unchanged). Any
other ``impl`` falls back to the scheme: ``file`` is posix, ``s3``/``s3s`` is S3, the rest is gfal2.
S3 is always reached through boto3, even when a record names Rucio's gfal implementation for it.
Rucio clients are shown Rucio's dotted paths (:func:`rucio_impl`), which they can import. Nothing is imported from a record's dotted path: only registered implementations can run.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from datamgmt.rse.lfn2pfn import DEFAULT_ALGORITHM
from datamgmt.rse.protocols.base import ProgressCallback, Protocol, SpaceUsage, StatResult
from datamgmt.rse.protocols.record import (
    OPERATIONS,
    ProtocolRecord,
    protocols_ordered,
    select_protocol,
)

__all__ = [
    "OPERATIONS",
    "ProgressCallback",
    "Protocol",
    "ProtocolRecord",
    "SpaceUsage",
    "StatResult",
    "create_protocol",
    "implementation_name",
    "rucio_impl",
    "protocols_ordered",
    "register_implementation",
    "select_protocol",
]

# Implementations load on demand: gfal2 and boto3 are heavy, and gfal2 is optional.
_IMPLEMENTATIONS: dict[str, str | type[Protocol]] = {
    "posix": "datamgmt.rse.protocols.posix:PosixProtocol",
    "gfal": "datamgmt.rse.protocols.gfal:GfalProtocol",
    "s3": "datamgmt.rse.protocols.s3:S3Protocol",
}
_ALIASES = {"gfal2": "gfal", "boto3": "s3"}
_S3_SCHEMES = ("s3", "s3s")
_BY_SCHEME = {"file": "posix", **{scheme: "s3" for scheme in _S3_SCHEMES}}


#: What the stock Rucio client loads for each of our implementations: it imports ``impl`` as a
#: dotted path, so a short name (``posix``) would fail there with "Empty module name".
_RUCIO_IMPLS = {
    "posix": "rucio.rse.protocols.posix.Default",
    "gfal": "rucio.rse.protocols.gfal.Default",
    "s3": "rucio.rse.protocols.gfal.NoRename",
}


def rucio_impl(record: ProtocolRecord | Mapping[str, Any]) -> str:
    """The ``impl`` to show Rucio clients: a record's own dotted path, else Rucio's for our implementation."""
    record = ProtocolRecord.from_mapping(record)
    if "." in record.impl:
        return record.impl
    return _RUCIO_IMPLS.get(implementation_name(record), record.impl)


def register_implementation(name: str, implementation: type[Protocol]) -> None:
    """Let records name ``implementation`` as ``impl = name`` (or ``<anything>.<name>.<Class>``)."""
    _IMPLEMENTATIONS[name] = implementation


def implementation_name(record: ProtocolRecord | Mapping[str, Any]) -> str:
    """The registered implementation a record asks for, by ``impl`` first, then by scheme."""
    record = ProtocolRecord.from_mapping(record)
    parts = record.impl.split(".")
    for candidate in (record.impl, parts[-2] if len(parts) > 1 else ""):
        candidate = _ALIASES.get(candidate, candidate)
        if candidate == "gfal" and len(parts) > 1 and record.scheme in _S3_SCHEMES:
            return "s3"  # Rucio's gfal impl for S3 (shown to its clients): we reach S3 through boto3
        if candidate in _IMPLEMENTATIONS:
            return candidate
    return _BY_SCHEME.get(record.scheme, "gfal")


def _implementation(name: str) -> type[Protocol]:
    implementation = _IMPLEMENTATIONS[name]
    if isinstance(implementation, str):
        module, _, attribute = implementation.partition(":")
        implementation = _IMPLEMENTATIONS[name] = getattr(importlib.import_module(module), attribute)
    return implementation


def create_protocol(
    record: ProtocolRecord | Mapping[str, Any],
    settings: Mapping[str, Any] | None = None,
    *,
    lfn2pfn_algorithm: str = DEFAULT_ALGORITHM,
) -> Protocol:
    """A ready protocol for ``record``; RSEProtocolNotSupported if its implementation lacks the scheme."""
    implementation = _implementation(implementation_name(record))
    return implementation(record, settings, lfn2pfn_algorithm=lfn2pfn_algorithm)
