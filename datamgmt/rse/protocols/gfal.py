"""Storage reached through gfal2: XRootD, WebDAV/HTTP(S), local files and gfal2's mock plugin.

The gfal2 bindings are imported and the context created on first use, for two reasons: machines
that never talk to grid storage need not have gfal2, and davix reads ``X509_CERT_DIR`` when the
context is created, so the CA directory must be set before that moment. A gfal2 context is not
thread-safe: use one protocol instance per thread.

gfal2 opens a ``file://`` PFN's path as it is (no percent-decoding) and follows symbolic links, so
for that scheme every operation first runs the POSIX protocol's confinement checks on that same
path (``datamgmt.rse.confine``).
"""

from __future__ import annotations

import functools
import json
import os
import stat as stat_mode
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from datamgmt.exceptions import ConfigurationError, SourceNotFound, StorageError
from datamgmt.rse.checksum import require_supported
from datamgmt.rse.confine import Access, confined_file_path
from datamgmt.rse.lfn2pfn import normalize_prefix
from datamgmt.rse.protocols.base import ProgressCallback, Protocol, SpaceUsage, StatResult

ENOENT = 2
DEFAULT_TRANSFER_TIMEOUT = 3600


@functools.cache
def _gfal2() -> ModuleType:
    try:
        import gfal2
    except ImportError as error:
        raise ConfigurationError(
            "The gfal2 Python bindings are not installed (Debian: python3-gfal2 and gfal2-plugin-*)"
        ) from error
    return gfal2


@contextmanager
def _gfal_errors(what: str) -> Iterator[None]:
    """errno 2 means the file is not there; every other gfal2 failure is a storage error."""
    try:
        yield
    except _gfal2().GError as error:
        if error.code == ENOENT:
            raise SourceNotFound(f"{what}: {error.message}") from error
        raise StorageError(f"{what}: [errno {error.code}] {error.message}") from error


class GfalProtocol(Protocol):
    """Any scheme gfal2 has a plugin for; checksums are computed by the storage server.

    Settings: ``x509_cert_dir`` (CA directory for https/davs), ``insecure`` (skip TLS verification),
    ``transfer_timeout`` (seconds per put/get).
    """

    schemes = frozenset({"root", "davs", "https", "dav", "http", "file", "mock"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._context: Any = None

    @property
    def base_url(self) -> str:
        if self.record.scheme == "file":
            return "file://"
        # XRootD reads root://host:port/path as relative; the absolute form has a double slash.
        return super().base_url + ("/" if self.record.scheme == "root" else "")

    @property
    def context(self) -> Any:
        """The gfal2 context, created on first use (after ``X509_CERT_DIR`` is set)."""
        if self._context is None:
            if self.settings.get("x509_cert_dir"):
                os.environ["X509_CERT_DIR"] = str(self.settings["x509_cert_dir"])
            context = _gfal2().creat_context()
            if self.settings.get("insecure"):
                context.set_opt_boolean("HTTP PLUGIN", "INSECURE", True)
            if self.record.scheme == "mock":
                # Debian's default makes every mock copy sleep five seconds.
                context.set_opt_integer("MOCK PLUGIN", "MIN_TRANSFER_TIME", 0)
                context.set_opt_integer("MOCK PLUGIN", "MAX_TRANSFER_TIME", 0)
            self._context = context
        return self._context

    def _confine(self, pfn: str, access: Access = "read") -> None:
        """Check that ``pfn`` lies below the prefix; for ``file://`` also on the real file system."""
        self._split_pfn(pfn)
        if self.record.scheme == "file":
            confined_file_path(pfn, self.record.prefix, access)

    def stat(self, pfn: str) -> StatResult:
        self._confine(pfn)
        with _gfal_errors(f"stat {pfn}"):
            info = self.context.stat(pfn)
        if stat_mode.S_ISDIR(info.st_mode):
            raise StorageError(f"stat {pfn}: is a directory")
        return StatResult(size=info.st_size)

    def _copy(self, source: str, target: str, progress_callback: ProgressCallback | None) -> None:
        params = self.context.transfer_parameters()
        params.overwrite = True
        params.create_parent = True
        params.timeout = int(self.settings.get("transfer_timeout", DEFAULT_TRANSFER_TIMEOUT))
        if progress_callback:
            params.monitor_callback = lambda _src, _dst, _avg, _inst, done, _elapsed: progress_callback(done)
        with _gfal_errors(f"copy {source} -> {target}"):
            self.context.filecopy(params, source, target)

    def put(self, local_path: str, pfn: str, progress_callback: ProgressCallback | None = None) -> None:
        self._confine(pfn, "write")
        if not os.path.isfile(local_path):
            raise SourceNotFound(f"put {local_path}: no such local file")
        self._copy("file://" + os.path.abspath(local_path), pfn, progress_callback)
        if progress_callback:
            progress_callback(os.path.getsize(local_path))

    def get(self, pfn: str, local_path: str, progress_callback: ProgressCallback | None = None) -> None:
        self._confine(pfn)
        self._copy(pfn, "file://" + os.path.abspath(local_path), progress_callback)
        if progress_callback:
            progress_callback(os.path.getsize(local_path))

    def delete(self, pfn: str) -> None:
        self._confine(pfn, "delete")
        with _gfal_errors(f"delete {pfn}"):
            self.context.unlink(pfn)

    def rename(self, pfn: str, new_pfn: str) -> None:
        self._confine(pfn, "delete")
        self._confine(new_pfn, "write")
        with _gfal_errors(f"rename {pfn} -> {new_pfn}"):
            self.context.rename(pfn, new_pfn)

    def checksum(self, pfn: str, algorithm: str) -> str:
        self._confine(pfn)
        with _gfal_errors(f"checksum {pfn}"):
            return str(self.context.checksum(pfn, require_supported(algorithm).upper())).lower()

    def list_files(self) -> Iterator[tuple[str, int]]:
        """Files below the prefix, walked with gfal2's ``listdir`` and a ``stat`` per entry."""
        pending = [self.base_url + normalize_prefix(self.record.prefix)]
        while pending:
            directory = pending.pop()
            with _gfal_errors(f"list {directory}"):
                names = self.context.listdir(directory)
            for name in names:
                url = directory + name
                with _gfal_errors(f"stat {url}"):
                    info = self.context.stat(url)
                if stat_mode.S_ISDIR(info.st_mode):
                    pending.append(url + "/")
                else:
                    yield url, info.st_size

    def space(self) -> SpaceUsage | None:
        """The ``spacetoken`` extended attribute of the prefix (of the endpoint's root while
        the prefix does not exist yet), which gfal2 answers from an XRootD space query or a
        WebDAV quota (RFC 4331) PROPFIND: a JSON object, or a list of them (one per space
        token, summed), with ``totalsize`` and ``unusedsize``.  None when the endpoint does
        not answer it (XrdHttp, for one)."""
        for path in dict.fromkeys((self.record.prefix, "/")):
            try:
                with _gfal_errors(f"space {self.base_url}{path}"):
                    answer = json.loads(self.context.getxattr(self.base_url + path, "spacetoken"))
            except (StorageError, SourceNotFound, ValueError):
                continue  # XRootD reports a missing prefix with errors of its own
            return _space_from_tokens(answer if isinstance(answer, list) else [answer])
        return None


def _space_from_tokens(tokens: list[Any]) -> SpaceUsage | None:
    try:
        total, free = (sum(int(token[key]) for token in tokens) for key in ("totalsize", "unusedsize"))
    except (KeyError, TypeError, ValueError):
        return None
    return SpaceUsage(total=total, free=free) if total > 0 else None
