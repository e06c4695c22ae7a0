"""Keep file-system work inside one directory on the real file system, symbolic links included.

A lexical check (``lfn2pfn.path_below_prefix``) cannot see that ``prefix/user/x`` is a symbolic
link to ``/etc``: the kernel follows it when the path is opened. These helpers resolve what
already exists (``os.path.realpath``) and refuse a path whose real location leaves the root:

- reads follow links, but only to files whose real path stays under the root;
- writes and deletes never go through a link in the final component (an ``lstat`` check here and
  ``O_NOFOLLOW`` in the caller's ``open``), and their parent directories must resolve inside;
- missing directories are created one level at a time, each checked before the next is made,
  so a planted link cannot make us create anything outside either.

The checks run just before the operation. A process that swaps a directory for a link between
the check and the system call can still race them; they stop links that are already there.
Used by the POSIX and gfal2 ``file://`` protocols and by the client's downloads.
"""

from __future__ import annotations

import errno
import os
from typing import Literal

from datamgmt.exceptions import InvalidPath
from datamgmt.rse.lfn2pfn import path_below_prefix


def is_inside(root: str, path: str) -> bool:
    """Whether the real path of ``path`` is ``root`` or below it (``root`` itself must be real)."""
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip("/") + "/")


def require_inside(root: str, path: str) -> str:
    """``path`` when its real path lies below ``root``; InvalidPath otherwise."""
    if not is_inside(root, path):
        raise InvalidPath(f"{path!r} resolves to {os.path.realpath(path)!r}, outside {root!r}")
    return path


def require_not_link(path: str) -> str:
    """``path`` unless it is a symbolic link, which writes and deletes must never go through."""
    if os.path.islink(path):
        raise InvalidPath(f"{path!r} is a symbolic link; refusing to write or delete through it")
    return path


def make_dirs_inside(root: str, relative: str) -> None:
    """Create ``root/relative`` and its missing parents, each checked to resolve inside ``root``.

    ``root`` itself is created if missing: it is the trusted configured location.
    """
    segments = [segment for segment in relative.split("/") if segment not in ("", ".")]
    if os.path.isabs(relative) or ".." in segments:
        raise InvalidPath(f"{relative!r} is not a path below {root!r}")
    if os.path.exists(root) and not os.path.isdir(root):
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", root)  # the prefix itself
    os.makedirs(root, exist_ok=True)
    current = root
    for segment in segments:
        current = os.path.join(current, segment)
        try:
            os.mkdir(current)
        except FileExistsError:
            pass  # an existing directory, or a link that require_inside judges
        require_inside(root, current)


def writable_path(root: str, relative: str) -> str:
    """``root/relative``, ready to be written: parents created inside ``root``, the final component no link."""
    make_dirs_inside(root, os.path.dirname(relative))
    return require_not_link(os.path.join(root, relative))


def deletable_path(root: str, relative: str) -> str:
    """``root/relative``, safe to unlink: its directory resolves inside ``root`` and it is no link."""
    path = os.path.join(root, relative)
    require_inside(root, os.path.dirname(path))
    return require_not_link(path)


def file_url_path(pfn: str, prefix: str) -> str:
    """The raw path of a ``file://`` URL (or a bare absolute path), checked to lie below ``prefix``.

    The path is taken as the file system will see it: no percent-decoding, and ``?`` or ``#`` are
    part of it, not a query or a fragment.
    """
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
    path_below_prefix(prefix, path)
    return path


Access = Literal["read", "write", "delete"]


def confined_file_path(pfn: str, prefix: str, access: Access) -> str:
    """The local path of ``pfn``, checked below ``prefix`` lexically and, for ``access``, on the real file system.

    The path returned starts from the prefix's real path, so it is exactly the path that was checked.
    """
    root = os.path.realpath(prefix)
    relative = os.path.relpath(file_url_path(pfn, prefix), prefix)  # lexical: the path has no '..'
    if access == "read":
        return require_inside(root, os.path.join(root, relative))
    if access == "write":
        return writable_path(root, relative)
    return deletable_path(root, relative)
