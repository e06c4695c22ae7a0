"""One verified gfal2 copy, the way FTS's url-copy does it.

Both the embedded transfer tool and the FTS3 test double copy through :func:`verified_copy`, so a
copy means the same thing everywhere: stat the source, check its checksum against the expected
value, refuse to clobber unless asked, copy, check the destination's checksum, and remove a
destination that does not verify.  Checksums are compared per end with the first algorithm the
end supports (S3 has no adler32 but serves md5), which is what lets an s3 end verify at all.
Failures carry FTS's reason format ``"<SCOPE> [<errno>] <message>"``.

A ``file://`` end given its RSE's prefix (``source_root``, ``destination_root``) is confined to it
the way the protocols confine their own file work (:mod:`datamgmt.rse.confine`): the raw path,
not a percent-decoded one, must lie below the prefix, the source's real path must stay inside
it, and the destination is written only through directories that resolve inside it and never
through a symbolic link.  The copy then uses exactly the path that was checked.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from dataclasses import dataclass, field

import gfal2

from datamgmt.exceptions import InvalidPath
from datamgmt.rse.confine import Access, confined_file_path

#: gfal2 option groups → key → value, applied to every context (S3 keys, HTTP copy mode, TLS...).
Gfal2Options = Mapping[str, Mapping[str, str | bool | int]]

_UNSUPPORTED = {errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}


class CopyFailure(Exception):
    """A copy that did not produce a verified destination; ``str()`` is the FTS-style reason."""

    def __init__(self, scope: str, code: int, message: str) -> None:
        self.scope, self.code, self.message = scope, code, message
        super().__init__(f"{scope} [{code}] {message}")


@dataclass(frozen=True)
class CopyJob:
    """What to copy and how to verify it.

    ``checksums`` maps algorithm (``ADLER32``, ``MD5``) to the expected hex value, in preference
    order; an empty mapping with verification on compares source and destination with each other.
    """

    source: str
    destination: str
    checksums: Mapping[str, str] = field(default_factory=dict)
    verify: str = "both"
    overwrite: bool = True
    timeout: int = 3600
    #: The prefix of the source's and destination's RSE protocol: a ``file://`` end must stay inside it.
    source_root: str | None = None
    destination_root: str | None = None


def new_context(options: Gfal2Options | None = None) -> gfal2.Gfal2Context:
    """A fresh gfal2 context (contexts are not thread-safe: one per copy, which also makes
    :meth:`cancel` abort exactly that copy)."""
    ctx = gfal2.creat_context()
    for group, values in (options or {}).items():
        for key, value in values.items():
            if isinstance(value, bool):
                ctx.set_opt_boolean(group, key, value)
            elif isinstance(value, int):
                ctx.set_opt_integer(group, key, value)
            else:
                ctx.set_opt_string(group, key, str(value))
    return ctx


def _checksum(ctx: gfal2.Gfal2Context, url: str, wanted: Mapping[str, str], scope: str) -> tuple[str, str]:
    """Return (algorithm, value) for the first algorithm in ``wanted`` that ``url`` supports."""
    for algorithm in wanted or ("ADLER32", "MD5"):
        try:
            return algorithm, ctx.checksum(url, algorithm).lower()
        except gfal2.GError as exc:
            if exc.code not in _UNSUPPORTED:
                raise CopyFailure(scope, exc.code, f"checksum of {url} failed: {exc.message}") from exc
    raise CopyFailure(scope, errno.EOPNOTSUPP, f"{url} supports none of the checksums {', '.join(wanted)}")


def _normalise(algorithm: str, value: str) -> str:
    value = value.lower()
    return value.zfill(8) if algorithm.upper() == "ADLER32" else value


def _verify(ctx: gfal2.Gfal2Context, url: str, expected: Mapping[str, str], scope: str) -> None:
    algorithm, found = _checksum(ctx, url, expected, scope)
    want = _normalise(algorithm, expected[algorithm]) if algorithm in expected else None
    if want is not None and _normalise(algorithm, found) != want:
        raise CopyFailure(
            scope,
            errno.EIO,
            f"{scope} CHECKSUM MISMATCH {algorithm} of {url}: expected {want}, found {found}",
        )


def _exists(ctx: gfal2.Gfal2Context, url: str) -> bool:
    try:
        ctx.stat(url)
    except gfal2.GError as exc:
        if exc.code == errno.ENOENT:
            return False
        raise CopyFailure("DESTINATION", exc.code, f"Failed to stat destination: {exc.message}") from exc
    return True


def _confined(url: str, root: str | None, access: Access, scope: str) -> str:
    """``url``, or for a ``file://`` end with a root the ``file://`` URL of its checked path."""
    if root is None or not url.lower().startswith("file:"):
        return url
    try:
        return "file://" + confined_file_path(url, root, access)
    except InvalidPath as exc:
        raise CopyFailure(scope, errno.EACCES, f"{url} escapes its storage prefix {root}: {exc}") from exc
    except OSError as exc:  # the storage itself is broken (a prefix that is not a directory...)
        raise CopyFailure(scope, exc.errno or errno.EIO, f"{url}: {exc.strerror or exc}") from exc


def verified_copy(ctx: gfal2.Gfal2Context, job: CopyJob) -> int:
    """Copy ``job.source`` to ``job.destination`` and verify it; return the bytes copied.

    Raises :class:`CopyFailure`.  A destination that was written but does not verify is deleted,
    a pre-existing destination that was not to be overwritten is left alone.
    """
    source = _confined(job.source, job.source_root, "read", "SOURCE")
    try:
        size = ctx.stat(source).st_size
    except gfal2.GError as exc:
        raise CopyFailure("SOURCE", exc.code, f"Failed to stat source {job.source}: {exc.message}") from exc
    expected = dict(job.checksums)
    if job.verify in ("both", "source") and expected:
        _verify(ctx, source, expected, "SOURCE")
    elif job.verify == "both":
        # No expected value: the source's own checksum becomes the reference for the destination.
        algorithm, value = _checksum(ctx, source, {}, "SOURCE")
        expected = {algorithm: value}
    destination = _confined(job.destination, job.destination_root, "write", "DESTINATION")
    if _exists(ctx, destination) and not job.overwrite:
        raise CopyFailure("DESTINATION", errno.EEXIST, "Destination file exists and overwrite is not enabled")
    params = ctx.transfer_parameters()
    params.overwrite, params.create_parent, params.timeout = True, True, job.timeout
    try:
        ctx.filecopy(params, source, destination)
        if job.verify in ("both", "target"):
            _verify(ctx, destination, expected, "DESTINATION")
    except gfal2.GError as exc:
        _remove_quietly(ctx, destination)
        raise CopyFailure("TRANSFER", exc.code, exc.message) from exc
    except CopyFailure:
        _remove_quietly(ctx, destination)
        raise
    return size


def _remove_quietly(ctx: gfal2.Gfal2Context, url: str) -> None:
    """Best-effort cleanup of a destination that did not verify (FTS does the same)."""
    try:
        ctx.unlink(url)
    except gfal2.GError:
        return
