"""Fetch one file from the first replica that delivers the right bytes.

Each candidate is downloaded to a temporary file beside the destination and its checksum is
computed locally; a replica that fails or delivers other bytes is skipped and reported, and the
next is tried. The destination appears only once a copy has verified.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from datamgmt.exceptions import ChecksumMismatch, DatamgmtError, InputValidationError, StorageError
from datamgmt.rse.checksum import file_checksums, verify_expected
from datamgmt.rse.protocols.base import ProgressCallback, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DownloadResult:
    """The replica that served the file, and why the ones before it were skipped."""

    pfn: str
    size: int
    adler32: str
    md5: str
    #: ``(pfn, error)`` for each candidate that was tried and rejected, in order.
    failures: list[tuple[str, DatamgmtError]] = field(default_factory=list)


def download_file(
    candidates: Sequence[tuple[Protocol, str]],
    local_path: str,
    *,
    adler32: str | None = None,
    md5: str | None = None,
    size: int | None = None,
    progress_callback: ProgressCallback | None = None,
) -> DownloadResult:
    """Download to ``local_path`` from the first of ``candidates`` whose copy verifies.

    At least one of ``adler32`` and ``md5`` is required. Raises ChecksumMismatch when every
    candidate delivered wrong bytes, StorageError when all failed and at least one for another reason.
    """
    if not adler32 and not md5:
        raise InputValidationError("download_file needs an expected adler32 or md5 to verify against")
    failures: list[tuple[str, DatamgmtError]] = []
    directory = os.path.dirname(os.path.abspath(local_path))
    for protocol, pfn in candidates:
        partial = os.path.join(directory, f".{os.path.basename(local_path)}.datamgmt-part-{uuid.uuid4().hex}")
        try:
            protocol.get(pfn, partial, progress_callback)
            local = file_checksums(partial)
            verify_expected(local, f"The copy from {pfn}", size=size, adler32=adler32, md5=md5)
            os.replace(partial, local_path)
            return DownloadResult(pfn, local.size, local.adler32, local.md5, failures)
        except DatamgmtError as error:
            log.warning("download of %s failed, trying the next replica: %s", pfn, error)
            failures.append((pfn, error))
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    summary = "; ".join(f"{pfn}: {error.message}" for pfn, error in failures) or "no replica given"
    if failures and all(isinstance(error, ChecksumMismatch) for _, error in failures):
        raise ChecksumMismatch(f"Every replica failed verification: {summary}")
    raise StorageError(f"Could not download {local_path}: {summary}")
