"""Storage on a locally mounted file system, in pure Python.

PFNs are ``file:///prefix/path`` (``file://localhost/...`` too) or bare absolute paths.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from datamgmt.exceptions import InvalidPath, SourceNotFound, StorageError
from datamgmt.rse.checksum import CHUNK_SIZE, checksum_of, read_chunks
from datamgmt.rse.lfn2pfn import path_below_prefix
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

    def local_path(self, pfn: str) -> str:
        """The file-system path of ``pfn``, checked to lie below the prefix."""
        path = pfn
        for start in ("file://localhost/", "file:///"):
            if pfn.lower().startswith(start):
                path = pfn[len(start) - 1 :]
                break
        else:
            if "://" in pfn:
                raise InvalidPath(f"PFN {pfn!r} is neither a file:// URL on this host nor a local path")
        if not path.startswith("/"):
            raise InvalidPath(f"PFN {pfn!r} is not an absolute path")
        path_below_prefix(self.record.prefix, path)
        return path

    def stat(self, pfn: str) -> StatResult:
        path = self.local_path(pfn)
        with _os_errors(f"stat {pfn}"):
            info = os.stat(path)
        if not os.path.isfile(path):
            raise StorageError(f"stat {pfn}: not a regular file")
        return StatResult(size=info.st_size)

    def put(self, local_path: str, pfn: str, progress_callback: ProgressCallback | None = None) -> None:
        self._transfer(local_path, self.local_path(pfn), progress_callback, f"put {local_path} -> {pfn}")

    def get(self, pfn: str, local_path: str, progress_callback: ProgressCallback | None = None) -> None:
        self._transfer(self.local_path(pfn), local_path, progress_callback, f"get {pfn} -> {local_path}")

    @staticmethod
    def _transfer(source: str, target: str, progress_callback: ProgressCallback | None, what: str) -> None:
        with _os_errors(what), open(source, "rb") as source_file:
            os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
            with open(target, "wb") as target_file:
                _copy(source_file, target_file, progress_callback)

    def delete(self, pfn: str) -> None:
        path = self.local_path(pfn)
        with _os_errors(f"delete {pfn}"):
            os.unlink(path)

    def rename(self, pfn: str, new_pfn: str) -> None:
        source, target = self.local_path(pfn), self.local_path(new_pfn)
        with _os_errors(f"rename {pfn} -> {new_pfn}"):
            if not os.path.exists(source):
                raise FileNotFoundError(2, "No such file or directory", source)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(source, target)

    def checksum(self, pfn: str, algorithm: str) -> str:
        path = self.local_path(pfn)
        with _os_errors(f"checksum {pfn}"):
            return checksum_of(read_chunks(path), algorithm)

    def space(self) -> SpaceUsage:
        """statvfs of the prefix (of its nearest existing parent before the first file is
        written): the file system's size, and the bytes an unprivileged writer can still use."""
        path = os.path.abspath(self.record.prefix)
        while not os.path.isdir(path) and path != os.path.dirname(path):
            path = os.path.dirname(path)
        with _os_errors(f"statvfs {path}"):
            info = os.statvfs(path)
        return SpaceUsage(total=info.f_blocks * info.f_frsize, free=info.f_bavail * info.f_frsize)
