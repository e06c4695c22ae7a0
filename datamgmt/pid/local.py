"""Local PIDs: ``<prefix>/<random suffix>`` minted without any remote service.

The catalogue is the registry: the share row holds the PID and its state, and the PID
resolves through our own landing page.  This is the default PID service, so
publishing works on a fresh installation.
"""

from __future__ import annotations

import secrets

from datamgmt.exceptions import PIDNotFound
from datamgmt.pid.base import Resolution
from datamgmt.publishing.records import ShareRecord

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32: no look-alike letters
_SUFFIX_LENGTH = 12


def random_suffix() -> str:
    """Twelve base32 characters (60 random bits): collisions are negligible, and still easy to type."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(_SUFFIX_LENGTH))


class LocalPIDClient:
    """A :class:`~datamgmt.pid.base.PIDClient` whose only registry is the catalogue.

    ``resolver_url`` is the landing-page template, e.g. ``https://data.example.org/pid/{pid}``.
    """

    service = "local"

    def __init__(self, prefix: str, resolver_url: str) -> None:
        self.prefix = prefix
        self.resolver_url = resolver_url

    def _own(self, pid: str) -> None:
        if not pid.startswith(f"{self.prefix}/") or pid == f"{self.prefix}/":
            raise PIDNotFound(f"{pid!r} was not minted under the local prefix {self.prefix!r}")

    def mint(self, suffix: str | None, landing_url: str, record: ShareRecord) -> str:
        pid = f"{self.prefix}/{suffix or random_suffix()}"
        self._own(pid)
        return pid

    def update(self, pid: str, landing_url: str, record: ShareRecord) -> None:
        """Only checks the PID is ours: the catalogue row is the record being updated."""
        self._own(pid)

    def withdraw(self, pid: str) -> None:
        """Only checks the PID is ours: the landing page shows the tombstone from the catalogue."""
        self._own(pid)

    def resolve(self, pid: str) -> Resolution:
        """Where the PID resolves; the share's state lives in the catalogue, hence ``local``."""
        self._own(pid)
        return Resolution(pid, self.resolver_url.format(pid=pid), "local")
