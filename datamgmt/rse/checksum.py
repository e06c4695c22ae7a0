"""Streaming checksums of files and byte streams.

Every upload and transfer verifies data end to end, so these helpers read each file once,
in bounded chunks, whatever its size. Values are lowercase hex: adler32 is always eight
digits (zero-padded), the form Rucio and the storage servers report.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from datamgmt.exceptions import ChecksumMismatch, UnsupportedOperation

#: Checksum algorithms the service knows, preferred first.
SUPPORTED_CHECKSUMS: tuple[str, ...] = ("adler32", "md5")

CHUNK_SIZE = 4 * 1024 * 1024


def read_chunks(path: str | os.PathLike[str], chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield the content of ``path`` in chunks of at most ``chunk_size`` bytes."""
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            yield chunk


def adler32_of(chunks: Iterable[bytes]) -> str:
    """Adler-32 of the concatenated chunks as eight lowercase hex digits."""
    value = 1
    for chunk in chunks:
        value = zlib.adler32(chunk, value)
    return f"{value & 0xFFFFFFFF:08x}"


def md5_of(chunks: Iterable[bytes]) -> str:
    """MD5 of the concatenated chunks as 32 lowercase hex digits."""
    digest = hashlib.md5(usedforsecurity=False)
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def adler32_file(path: str | os.PathLike[str]) -> str:
    return adler32_of(read_chunks(path))


def md5_file(path: str | os.PathLike[str]) -> str:
    return md5_of(read_chunks(path))


def require_supported(algorithm: str) -> str:
    """Return ``algorithm`` if the service knows it, else raise UnsupportedOperation."""
    if algorithm not in SUPPORTED_CHECKSUMS:
        raise UnsupportedOperation(
            f"Unsupported checksum algorithm {algorithm!r}; supported: {SUPPORTED_CHECKSUMS}"
        )
    return algorithm


def checksum_of(chunks: Iterable[bytes], algorithm: str) -> str:
    """Checksum of ``chunks`` with ``algorithm`` (one of :data:`SUPPORTED_CHECKSUMS`)."""
    return adler32_of(chunks) if require_supported(algorithm) == "adler32" else md5_of(chunks)


@dataclass(frozen=True)
class FileChecksums:
    """Size and every supported checksum of one file, as registered in the catalogue."""

    size: int
    adler32: str
    md5: str

    def get(self, algorithm: str) -> str:
        return str(getattr(self, require_supported(algorithm)))


def file_checksums(path: str | os.PathLike[str]) -> FileChecksums:
    """Size, adler32 and md5 of a file in a single read."""
    size, adler, digest = 0, 1, hashlib.md5(usedforsecurity=False)
    for chunk in read_chunks(path):
        size += len(chunk)
        adler = zlib.adler32(chunk, adler)
        digest.update(chunk)
    return FileChecksums(size=size, adler32=f"{adler & 0xFFFFFFFF:08x}", md5=digest.hexdigest())


def checksums_equal(first: str, second: str) -> bool:
    """Compare two hex checksums as Rucio does: case-insensitive, ignoring leading zeros.

    Some storage systems print adler32 without its zero padding (``1a2b3c`` for ``001a2b3c``).
    """
    return first.strip().lower().lstrip("0") == second.strip().lower().lstrip("0")


def verify_expected(
    actual: FileChecksums,
    what: str,
    *,
    size: int | None = None,
    adler32: str | None = None,
    md5: str | None = None,
) -> None:
    """Raise ChecksumMismatch unless ``actual`` matches every expected value given."""
    if size is not None and size != actual.size:
        raise ChecksumMismatch(f"{what} has {actual.size} bytes, expected {size}")
    for algorithm, expected in (("adler32", adler32), ("md5", md5)):
        if expected and not checksums_equal(expected, actual.get(algorithm)):
            raise ChecksumMismatch(f"{what} has {algorithm} {actual.get(algorithm)}, expected {expected}")
