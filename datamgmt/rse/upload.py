"""Put one local file on storage so that it either arrives whole and verified, or not at all.

The data goes to a temporary name next to the final PFN; the storage's own size and checksum of
that temporary are compared with the local file; only then is it renamed into place. Readers
therefore never see a partial file under the final name, and any failure removes the temporary.
Registering the replica in the catalogue is the caller's job.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from datamgmt.exceptions import ChecksumMismatch, DatamgmtError, FileAlreadyExists, SourceNotFound
from datamgmt.rse.checksum import FileChecksums, checksums_equal, file_checksums, verify_expected
from datamgmt.rse.protocols.base import ProgressCallback, Protocol

log = logging.getLogger(__name__)

TEMPORARY_MARKER = ".datamgmt-upload-"


@dataclass(frozen=True)
class UploadResult:
    """What was written: the values a caller registers."""

    pfn: str
    size: int
    adler32: str
    md5: str


def temporary_pfn(pfn: str) -> str:
    """A unique sibling of ``pfn`` for the bytes in flight."""
    return f"{pfn}{TEMPORARY_MARKER}{uuid.uuid4().hex}"


def verify_stored(protocol: Protocol, pfn: str, local: FileChecksums, verify_checksum: bool = True) -> None:
    """Compare the storage's own size and checksum of ``pfn`` with the local file's."""
    stored_size = protocol.stat(pfn).size
    if stored_size != local.size:
        raise ChecksumMismatch(f"{pfn} has {stored_size} bytes on storage, the local file {local.size}")
    if verify_checksum:
        algorithm = protocol.verification_checksums[0]
        stored = protocol.checksum(pfn, algorithm)
        if not checksums_equal(stored, local.get(algorithm)):
            raise ChecksumMismatch(
                f"{pfn} has {algorithm} {stored} on storage, the local file {local.get(algorithm)}"
            )


def upload_file(
    protocol: Protocol,
    local_path: str,
    pfn: str,
    *,
    size: int | None = None,
    adler32: str | None = None,
    md5: str | None = None,
    overwrite: bool = False,
    verify_checksum: bool = True,
    progress_callback: ProgressCallback | None = None,
    temporary: str | None = None,
) -> UploadResult:
    """Upload ``local_path`` to ``pfn`` through a verified temporary name.

    ``size``, ``adler32`` and ``md5``, when given, must match the local file (the values the
    catalogue holds). An existing file at ``pfn`` raises FileAlreadyExists unless ``overwrite``.
    ``verify_checksum=False`` checks only the size, for storage that computes no checksum.
    ``temporary`` names the file in flight (default: a random sibling); a resumable upload gives a
    name of its own so that a rerun after a kill overwrites, instead of orphaning, the partial file.
    """
    local = file_checksums(local_path)
    verify_expected(local, f"Local file {local_path}", size=size, adler32=adler32, md5=md5)
    if not overwrite and protocol.exists(pfn):
        raise FileAlreadyExists(f"{pfn} already exists on storage")
    temporary = temporary or temporary_pfn(pfn)
    try:
        protocol.put(local_path, temporary, progress_callback)
        verify_stored(protocol, temporary, local, verify_checksum)
        protocol.rename(temporary, pfn)
    except BaseException:
        try:
            protocol.delete(temporary)
        except SourceNotFound:
            pass  # the put failed before creating it
        except DatamgmtError as cleanup_error:
            log.warning("could not remove temporary upload %s: %s", temporary, cleanup_error)
        raise
    return UploadResult(pfn=pfn, size=local.size, adler32=local.adler32, md5=local.md5)
