"""dogpile.cache regions for the core services, with the backend chosen by configuration.

``[cache] backend`` is ``memory`` (per process, the default), ``redis`` or ``memcached``;
``[cache] url`` points at the server and ``[cache] expiration_time`` bounds how long any
entry lives.  Shared backends let many API workers and daemons reuse one another's
results, and let one process invalidate what all of them cached.

Caches that must forget at once everywhere (RSE expressions, validated tokens) key their
entries by a *generation* (:func:`make_generation`).  With a shared backend it lives there;
with the memory backend, whose entries no other process sees, it lives in a small file under
``[cache] generation_dir``, so the API workers and daemons of one host still see every
renewal before their next lookup.
"""

from __future__ import annotations

import os
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

from dogpile.cache import CacheRegion
from dogpile.cache import make_region as _dogpile_region
from dogpile.cache.api import NO_VALUE

from datamgmt.config import PROJECT_ROOT, Config, get_config
from datamgmt.exceptions import ConfigurationError

#: The memory backend forgets its oldest entries beyond this many, so that entries
#: orphaned by invalidation cannot grow a long-running process without bound.
MEMORY_MAX_ENTRIES = 100_000

_DEFAULT_URLS = {"redis": "redis://127.0.0.1:6379/0", "memcached": "127.0.0.1:11211"}


class BoundedDict(OrderedDict[str, Any]):
    """A mapping that drops its oldest keys once it holds more than ``max_entries``."""

    def __init__(self, max_entries: int) -> None:
        super().__init__()
        self.max_entries = max_entries

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        while len(self) > self.max_entries:
            self.popitem(last=False)


def make_region(
    namespace: str,
    *,
    backend: str | None = None,
    url: str | None = None,
    expiration_time: int | None = None,
    prefix: str | None = None,
    config: Config | None = None,
) -> CacheRegion:
    """A configured region whose keys read ``<prefix>:<namespace>:<key>``.

    Arguments left ``None`` come from the ``[cache]`` section (``prefix`` from ``[cache] prefix``,
    default ``datamgmt``, so that deployments sharing one server keep apart).  Shared servers also expire
    entries themselves (a little after dogpile would), so keys that nobody reads again,
    such as those of an old invalidation generation, do not accumulate there.
    """
    config = config or get_config()
    backend = (backend or config.get("cache", "backend")).strip().lower()
    url = url or config.get("cache", "url") or _DEFAULT_URLS.get(backend, "")
    lifetime = expiration_time if expiration_time is not None else config.get_int("cache", "expiration_time")
    server_lifetime = lifetime + 60 if lifetime > 0 else 0
    arguments: dict[str, object]
    if backend == "memory":
        name, arguments = "dogpile.cache.memory", {"cache_dict": BoundedDict(MEMORY_MAX_ENTRIES)}
    elif backend == "redis":
        name, arguments = "dogpile.cache.redis", {"url": url, "redis_expiration_time": server_lifetime}
    elif backend == "memcached":
        name, arguments = "dogpile.cache.pymemcache", {"url": url, "memcached_expire_time": server_lifetime}
    else:
        raise ConfigurationError(f"[cache] backend must be memory, redis or memcached, not {backend[:40]!r}")
    key_prefix = f"{prefix or config.get('cache', 'prefix', fallback='datamgmt')}:{namespace}:"
    region = _dogpile_region(key_mangler=lambda key: key_prefix + key)
    return region.configure(name, expiration_time=lifetime if lifetime > 0 else None, arguments=arguments)


class Generation(Protocol):
    """A token that changes whenever cached entries of one kind must all be forgotten."""

    def current(self) -> str: ...

    def renew(self) -> None: ...


class RegionGeneration:
    """The generation kept in the (shared) cache backend itself; a lost key only means a fresh one."""

    KEY = "generation"

    def __init__(self, region: CacheRegion) -> None:
        self.region = region

    def current(self) -> str:
        token = self.region.get(self.KEY, ignore_expiration=True)
        if token is NO_VALUE:
            token = uuid.uuid4().hex
            self.region.set(self.KEY, token)
        return token

    def renew(self) -> None:
        self.region.set(self.KEY, uuid.uuid4().hex)


#: How a renewal opens the generation file: one whole-byte append, made if missing.
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT


class FileGeneration:
    """The generation as the inode and size of one file that each renewal grows by a byte.

    Every process of the host reads it with one ``stat(2)`` and renews it with one append, where
    a per-process memory backend would never hear of another process's renewal.  Sizes only
    grow, so a generation never comes back (a file removed and made again has a new inode and
    starts over at one byte); the file keeps one byte per renewal, a megabyte per million.
    Replacing the file with a new one per renewal cost 0.24 to 0.5 ms a renewal and a read of
    the file per request.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def current(self) -> str:
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            self.renew()
            found = os.stat(self.path)
        return f"{found.st_ino}.{found.st_size}"

    def renew(self) -> None:
        try:
            fd = os.open(self.path, _APPEND, 0o600)
        except FileNotFoundError:  # the folder is made on first use only
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, _APPEND, 0o600)
        try:
            os.write(fd, b".")
        finally:
            os.close(fd)


def make_generation(namespace: str, region: CacheRegion, config: Config | None = None) -> Generation:
    """Where the generation of ``namespace`` lives: the shared backend, or a file for ``memory``."""
    config = config or get_config()
    if config.get("cache", "backend").strip().lower() != "memory":
        return RegionGeneration(region)
    folder = Path(config.get("cache", "generation_dir") or PROJECT_ROOT / "var" / "cache")
    prefix = config.get("cache", "prefix", fallback="datamgmt")
    return FileGeneration(folder / f"{prefix}-{namespace}.generation")
