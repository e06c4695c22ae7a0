"""Storage on a locally mounted file system, in pure Python.

PFNs are ``file:///prefix/path`` (``file://localhost/...`` too) or bare absolute paths, used as they
are: no percent-decoding. Every operation is confined to the prefix on the real file system
(``datamgmt.rse.confine``): reads only reach files whose real path is below the prefix, and writes
and deletes never go through a symbolic link.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from datamgmt.exceptions import SourceNotFound, StorageError
from datamgmt.rse.checksum import CHUNK_SIZE, checksum_of, read_chunks
from datamgmt.rse.confine import Access, confined_file_path
from datamgmt.rse.lfn2pfn import normalize_prefix
from datamgmt.rse.protocols.base import ProgressCallback, Protocol, SpaceUsage, StatResult


@contextmanager
def _os_errors(what: str) -> Iterator[None]:
    """Turn file-system errors into the service's storage errors."""
    try:
        yield
    except FileNotFoundError as error:
        raise SourceNotFound(f"{what}: {error.strerror}: {error.filename}") from error
    except OSError as error:
        raise StorageError(f"{what}: {error}") from error


def _copy(source: BinaryIO, target: BinaryIO, progress_callback: ProgressCallback | None) -> None:
    """Copy between open files in the kernel (sendfile), reporting progress per chunk."""
    done = 0
    while sent := os.sendfile(target.fileno(), source.fileno(), None, CHUNK_SIZE):
        done += sent
        if progress_callback:
            progress_callback(done)


class PosixProtocol(Protocol):
    """Files below ``prefix`` on this machine's file system."""

    schemes = frozenset({"file"})
    verification_checksums = ("adler32", "md5")

    @property
    def base_url(self) -> str:
        return "file://"

    def local_path(self, pfn: str, access: Access = "read") -> str:
        """The file-system path of ``pfn``, confined to the prefix for ``access`` (``datamgmt.rse.confine``)."""
        return confined_file_path(pfn, self.record.prefix, access)

    def stat(self, pfn: str) -> StatResult:
        path = self.local_path(pfn)
        with _os_errors(f"stat {pfn}"):
            info = os.stat(path)
        if not os.path.isfile(path):
            raise StorageError(f"stat {pfn}: not a regular file")
        return StatResult(size=info.st_size)

    def put(self, local_path: str, pfn: str, progress_callback: ProgressCallback | None = None) -> None:
        what = f"put {local_path} -> {pfn}"
        with _os_errors(what), open(local_path, "rb") as source_file:
            target = self.local_path(pfn, "write")
            with _open_no_follow(target) as target_file:
                _copy(source_file, target_file, progress_callback)

    def get(self, pfn: str, local_path: str, progress_callback: ProgressCallback | None = None) -> None:
        with _os_errors(f"get {pfn} -> {local_path}"), open(self.local_path(pfn), "rb") as source_file:
            os.makedirs(os.path.dirname(os.path.abspath(local_path)), exist_ok=True)
            with open(local_path, "wb") as target_file:
                _copy(source_file, target_file, progress_callback)

    def delete(self, pfn: str) -> None:
        path = self.local_path(pfn, "delete")
        with _os_errors(f"delete {pfn}"):
            os.unlink(path)

    def rename(self, pfn: str, new_pfn: str) -> None:
        source = self.local_path(pfn, "delete")
        with _os_errors(f"rename {pfn} -> {new_pfn}"):
            if not os.path.exists(source):
                raise FileNotFoundError(2, "No such file or directory", source)
            target = self.local_path(new_pfn, "write")
            os.replace(source, target)

    def checksum(self, pfn: str, algorithm: str) -> str:
        path = self.local_path(pfn)
        with _os_errors(f"checksum {pfn}"):
            return checksum_of(read_chunks(path), algorithm)

    def list_files(self) -> Iterator[tuple[str, int]]:
        """Files below the prefix (none when the prefix does not exist yet).  Symlinks are listed
        as files but never followed, so a link out of the prefix cannot pull foreign files in."""
        root = normalize_prefix(self.record.prefix)
        pending = [root] if os.path.isdir(root) else []
        while pending:
            directory = pending.pop()
            with _os_errors(f"list {directory}"), os.scandir(directory) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    else:
                        yield self.base_url + entry.path, entry.stat(follow_symlinks=False).st_size

    def space(self) -> SpaceUsage:
        """statvfs of the prefix (of its nearest existing parent before the first file is
        written): the file system's size, and the bytes an unprivileged writer can still use."""
        path = os.path.abspath(self.record.prefix)
        while not os.path.isdir(path) and path != os.path.dirname(path):
            path = os.path.dirname(path)
        with _os_errors(f"statvfs {path}"):
            info = os.statvfs(path)
        return SpaceUsage(total=info.f_blocks * info.f_frsize, free=info.f_bavail * info.f_frsize)


def _open_no_follow(path: str) -> BinaryIO:
    """``open(path, "wb")``, except that a link put in the final component after our check fails (ELOOP)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666), "wb")
