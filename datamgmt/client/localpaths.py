"""Where downloaded files land: always inside the directory the user named.

Scope and name come from the server, and the client does not trust a server with its file
system. ``scope:name`` lands at ``DIR/scope/name``: the name's slashes make sub-directories, and a
leading slash is part of the name, not the file-system root (the CMS-style ``/store/mc/f.root``
lands at ``DIR/scope/store/mc/f.root``). A scope is one directory level. A ``.`` or ``..``
component, an empty scope or name, a backslash or a control character (NUL included) cannot be
saved faithfully inside DIR and is refused, as are two files that would land on one path.

Links already in DIR are followed only while they stay inside it: directories are created one
level at a time and each one's real path is checked (``datamgmt.rse.confine``), so nothing is
created or written outside DIR.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from datamgmt.exceptions import InvalidPath
from datamgmt.rse.confine import make_dirs_inside, require_inside

_UNSAFE_SEGMENTS = frozenset({".", ".."})


def _segments(scope: str, name: str, value: str, what: str) -> list[str]:
    """The path components of ``value`` (the scope or the name of ``scope:name``), refusing unsafe ones."""
    if "\\" in value or any(ord(char) < 0x20 or char == "\x7f" for char in value):
        raise InvalidPath(
            f"The server listed {scope!r}:{name!r}, whose {what} holds a backslash or a control character"
        )
    segments = [segment for segment in value.split("/") if segment]
    if not segments or _UNSAFE_SEGMENTS & set(segments):
        raise InvalidPath(
            f"The server listed {scope!r}:{name!r}, whose {what} cannot be a path inside the directory"
        )
    return segments


def relative_target(scope: str, name: str, subdir: bool = True) -> str:
    """``scope/name`` (``name`` alone without ``subdir``) relative to the download directory; InvalidPath when unsafe."""
    if "/" in scope:
        raise InvalidPath(f"The server listed {scope!r}:{name!r}, whose scope holds a slash")
    scope_part = _segments(scope, name, scope, "scope") if subdir else []
    return os.path.join(*scope_part, *_segments(scope, name, name, "name"))


def download_targets(directory: str, dids: Iterable[tuple[str, str]], subdir: bool = True) -> list[str]:
    """The path of each DID below ``directory``, with its parent directories made and checked.

    Raises InvalidPath (before anything is downloaded) for an unsafe scope or name, for two DIDs
    that would land on one path (without ``subdir``, one name in two scopes), and for a path that
    resolves outside ``directory``.
    """
    relatives = [relative_target(scope, name, subdir) for scope, name in dids]
    seen: set[str] = set()
    for relative in relatives:
        if relative in seen:
            raise InvalidPath(f"The server listed two files that would both be saved as {relative!r}")
        seen.add(relative)
    root = os.path.realpath(directory)
    for relative in relatives:
        make_dirs_inside(root, os.path.dirname(relative))
    return [require_target_inside(directory, os.path.join(directory, relative)) for relative in relatives]


def require_target_inside(directory: str, path: str) -> str:
    """``path`` when its real path (links already there followed) lies below ``directory``."""
    return require_inside(os.path.realpath(directory), path)
