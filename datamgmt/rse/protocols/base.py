"""The interface every storage protocol implements.

A protocol instance wraps one :class:`ProtocolRecord` and speaks PFNs built from it. Each
operation first checks that its PFN lies below the record's prefix, so no caller (least of all
the reaper) can reach outside the area an RSE owns, whatever path a replica carries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import SplitResult, urlsplit

from datamgmt.exceptions import InvalidPath, RSEProtocolNotSupported, SourceNotFound
from datamgmt.rse.lfn2pfn import DEFAULT_ALGORITHM, join_path, lfn2path, path_below_prefix
from datamgmt.rse.protocols.record import ProtocolRecord

#: Called with the number of bytes transferred so far.
ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class StatResult:
    """What a storage reports about a file without reading it."""

    size: int
    #: Checksums the storage already knows (e.g. an S3 ETag), by algorithm; may be empty.
    checksums: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SpaceUsage:
    """Size and free space of the storage area a protocol writes to, as the storage reports them."""

    total: int
    free: int


class Protocol(ABC):
    """Operations on the files below one protocol's prefix."""

    #: URL schemes this implementation speaks.
    schemes: ClassVar[frozenset[str]]
    #: Checksums the storage computes from the stored bytes, preferred first; uploads verify with
    #: the first one.
    verification_checksums: ClassVar[tuple[str, ...]] = ("adler32",)

    def __init__(
        self,
        record: ProtocolRecord | Mapping[str, Any],
        settings: Mapping[str, Any] | None = None,
        *,
        lfn2pfn_algorithm: str = DEFAULT_ALGORITHM,
    ) -> None:
        self.record = ProtocolRecord.from_mapping(record)
        if self.record.scheme not in self.schemes:
            raise RSEProtocolNotSupported(
                f"{type(self).__name__} does not speak {self.record.scheme!r} (only {sorted(self.schemes)})"
            )
        self.settings: dict[str, Any] = dict(settings or {})
        self.lfn2pfn_algorithm = lfn2pfn_algorithm

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url}{self.record.prefix})"

    # --- names ------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """Everything of a PFN before the prefix."""
        record = self.record
        port = f":{record.port}" if record.port else ""
        return f"{record.scheme}://{record.hostname}{port}"

    def path_to_pfn(self, path: str) -> str:
        """The PFN of ``path``, relative to the prefix; raises InvalidPath if it would escape."""
        return self.base_url + join_path(self.record.prefix, path)

    def lfns2pfns(self, lfns: Iterable[Mapping[str, str]]) -> dict[str, str]:
        """PFNs keyed by ``scope:name``.

        An entry's ``path`` (a registered replica path) wins over the RSE's algorithm. Like Rucio,
        one leading slash of such a path is read as "relative to the prefix".
        """
        pfns = {}
        for lfn in lfns:
            scope, name = lfn["scope"], lfn["name"]
            path = lfn.get("path")
            if path:
                path = path[1:] if path.startswith("/") else path
            else:
                path = lfn2path(scope, name, self.lfn2pfn_algorithm)
            pfns[f"{scope}:{name}"] = self.path_to_pfn(path)
        return pfns

    def _split_pfn(self, pfn: str) -> SplitResult:
        """Parse ``pfn`` and check that it belongs to this protocol and lies below the prefix."""
        parts = urlsplit(pfn)
        record = self.record
        if parts.scheme.lower() != record.scheme:
            raise InvalidPath(f"PFN {pfn!r} does not use scheme {record.scheme!r}")
        if record.scheme != "file" and (
            (parts.hostname or "") != record.hostname.lower()
            or (record.port and parts.port and parts.port != record.port)
        ):
            raise InvalidPath(f"PFN {pfn!r} is not on {self.base_url}")
        path_below_prefix(record.prefix, parts.path)
        return parts

    # --- operations -------------------------------------------------------------------------
    @abstractmethod
    def stat(self, pfn: str) -> StatResult:
        """Size (and any checksums known for free); SourceNotFound when the file is missing."""

    def exists(self, pfn: str) -> bool:
        try:
            self.stat(pfn)
        except SourceNotFound:
            return False
        return True

    @abstractmethod
    def put(self, local_path: str, pfn: str, progress_callback: ProgressCallback | None = None) -> None:
        """Write a local file to ``pfn``, creating directories and replacing an existing file."""

    @abstractmethod
    def get(self, pfn: str, local_path: str, progress_callback: ProgressCallback | None = None) -> None:
        """Read ``pfn`` into a local file, creating its directory and replacing an existing file."""

    @abstractmethod
    def delete(self, pfn: str) -> None:
        """Remove the file; SourceNotFound when it is already gone."""

    @abstractmethod
    def rename(self, pfn: str, new_pfn: str) -> None:
        """Move a file within this protocol's area, replacing any file at ``new_pfn``."""

    @abstractmethod
    def checksum(self, pfn: str, algorithm: str) -> str:
        """The file's checksum (``adler32`` or ``md5``) as lowercase hex."""

    def list_files(self) -> Iterator[tuple[str, int]]:
        """Every file below the prefix as ``(PFN, size)``, PFNs spelt as :meth:`lfns2pfns` spells
        them, so a consistency check can compare storage with the catalogue by PFN.

        Optional: a protocol that cannot enumerate its storage raises RSEProtocolNotSupported."""
        raise RSEProtocolNotSupported(f"{type(self).__name__} cannot list its files")

    def space(self) -> SpaceUsage | None:
        """Total and free bytes where the prefix lies, as the storage reports them; None when
        this storage cannot tell (the reaper then falls back on the RSE's configured capacity)."""
        return None
