"""Logical file names to storage paths, and paths to PFNs that stay inside their prefix.

A deterministic RSE derives each file's path from its ``scope:name`` with an algorithm chosen by
the RSE (attribute ``lfn2pfn_algorithm``). ``hash`` and ``identity`` are built in; a deployment adds
its own with :func:`register_algorithm` or through the ``datamgmt.lfn2pfn`` entry-point group.

Paths come from users (names, registered replica paths), so every join with a protocol prefix is
checked: a path that could leave the prefix (``..`` segments, absolute names, backslashes,
percent-encoded variants of these) raises :class:`~datamgmt.exceptions.InvalidPath` instead of
reaching a storage call, in particular a deletion.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from importlib.metadata import entry_points
from urllib.parse import unquote

from datamgmt.exceptions import ConfigurationError, InvalidPath

#: ``(scope, name) -> path`` relative to the protocol prefix.
Algorithm = Callable[[str, str], str]

ENTRY_POINT_GROUP = "datamgmt.lfn2pfn"
DEFAULT_ALGORITHM = "hash"

_ALGORITHMS: dict[str, Algorithm] = {}


def register_algorithm(name: str, algorithm: Algorithm) -> None:
    """Make ``algorithm`` available under ``name`` (replacing any previous one)."""
    _ALGORITHMS[name] = algorithm


def get_algorithm(name: str) -> Algorithm:
    """The algorithm registered as ``name``, loading it from an entry point the first time."""
    if name not in _ALGORITHMS:
        for entry in entry_points(group=ENTRY_POINT_GROUP, name=name):
            register_algorithm(name, entry.load())
            break
        else:
            raise ConfigurationError(f"Unknown lfn2pfn algorithm {name!r}; known: {sorted(_ALGORITHMS)}")
    return _ALGORITHMS[name]


def lfn2path(scope: str, name: str, algorithm: str = DEFAULT_ALGORITHM) -> str:
    """The storage path of ``scope:name`` under ``algorithm``, relative to the protocol prefix."""
    return get_algorithm(algorithm)(scope, name)


def _scope_directory(scope: str) -> str:
    """User and group scopes (``user.jdoe``) nest one directory per dotted component."""
    if scope.startswith(("user.", "group.")):
        return scope.replace(".", "/")
    return scope


def hash_path(scope: str, name: str) -> str:
    """Rucio's ``hash`` layout: two directory levels from the md5 of ``scope:name``."""
    digest = hashlib.md5(f"{scope}:{name}".encode(), usedforsecurity=False).hexdigest()
    return f"{_scope_directory(scope)}/{digest[0:2]}/{digest[2:4]}/{name}"


def identity_path(scope: str, name: str) -> str:
    """``scope/name``, for storage browsed by people."""
    return f"{_scope_directory(scope)}/{name}"


register_algorithm("hash", hash_path)
register_algorithm("identity", identity_path)


def _decoded(text: str) -> str:
    """Undo percent-encoding until stable, so ``%252e%252e`` is seen as ``..``."""
    for _ in range(8):
        decoded = unquote(text)
        if decoded == text:
            return decoded
        text = decoded
    raise InvalidPath(f"Path {text!r} is percent-encoded too many times")


def _segments(path: str, *, decode: bool = True) -> list[str]:
    """The directory segments of ``path`` (decoded unless told otherwise); refuses anything that walks upwards."""
    text = _decoded(path) if decode else path
    if "\\" in text or any(ord(char) < 0x20 or char == "\x7f" for char in text):
        raise InvalidPath(f"Path {path!r} contains a backslash or a control character")
    segments = [segment for segment in text.split("/") if segment not in ("", ".")]
    if ".." in segments:
        raise InvalidPath(f"Path {path!r} contains a '..' segment")
    return segments


def normalize_prefix(prefix: str | None) -> str:
    """A prefix with exactly one leading and one trailing slash (``/`` when empty)."""
    segments = _segments(prefix or "")
    return "/" + "".join(f"{segment}/" for segment in segments)


def join_path(prefix: str, path: str) -> str:
    """``prefix + path``, guaranteed to name something strictly below ``prefix``.

    ``path`` must be relative: an absolute path, an empty one, or one that walks upwards raises
    :class:`InvalidPath`.
    """
    if not path or _decoded(path).startswith("/"):
        raise InvalidPath(f"Path {path!r} must be a non-empty path relative to the prefix")
    if not _segments(path):
        raise InvalidPath(f"Path {path!r} names the prefix itself, not a file below it")
    return normalize_prefix(prefix) + path


def path_below_prefix(prefix: str, path: str) -> str:
    """The part of an absolute storage ``path`` below ``prefix``; raises if it is not below it.

    This is the check every protocol runs on a PFN before touching storage. Some storage reads a
    path as it is (POSIX, gfal2's ``file://``, S3 keys), some percent-decodes it first (HTTP
    servers), so the path must lie below the prefix under both readings: ``/data/rs%65/x`` names
    ``/data/rse/x`` only to a decoding server, and a POSIX prefix ``/data/rse/`` must not reach it.
    """
    prefix_segments = _segments(prefix)
    for decode in (False, True):
        segments = _segments(path, decode=decode)
        if len(segments) <= len(prefix_segments) or segments[: len(prefix_segments)] != prefix_segments:
            raise InvalidPath(f"Path {path!r} is not below the protocol prefix {normalize_prefix(prefix)!r}")
    return "/".join(segments[len(prefix_segments) :])
