"""PFNs for replica listings, built by the storage layer's protocols.

Per RSE, the protocols that offer ``read`` in the requested domain are ranked once
(lowest priority first) and reused for every file of the listing; each replica then
gets one PFN per protocol, through the RSE's lfn2pfn algorithm or its registered path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from datamgmt.core.rse_access import rse_detail
from datamgmt.exceptions import InvalidPath
from datamgmt.rse.lfn2pfn import DEFAULT_ALGORITHM
from datamgmt.rse.protocols import Protocol, create_protocol, protocols_ordered


@dataclass(frozen=True)
class RSEAccess:
    """What a listing needs to know of one RSE."""

    rse_id: str
    rse_type: str
    volatile: bool
    protocols: list[Protocol]


class PFNBuilder:
    """Builds Rucio's ``pfns``/``rses``/``states`` for replicas, caching per RSE."""

    def __init__(self, session: Session, domain: str = "wan", schemes: list[str] | None = None) -> None:
        self.session = session
        self.domain = domain
        self.schemes = schemes
        self._rses: dict[str, RSEAccess] = {}

    def _access(self, rse: str, rse_id: str | None) -> RSEAccess:
        if rse not in self._rses:
            detail = rse_detail(self.session, rse, rse_id)
            algorithm = str(detail.attributes.get("lfn2pfn_algorithm") or DEFAULT_ALGORITHM)
            records = protocols_ordered(detail.protocols, "read", self.domain, self.schemes)
            protocols = [create_protocol(record, lfn2pfn_algorithm=algorithm) for record in records]
            self._rses[rse] = RSEAccess(detail.info.id, detail.info.rse_type, detail.info.volatile, protocols)
        return self._rses[rse]

    def describe(self, entry: dict[str, Any]) -> dict[str, Any]:
        """One listing line: the file with every PFN of every replica, ranked."""
        pfns: dict[str, dict[str, Any]] = {}
        by_rse: dict[str, list[str]] = {}
        states: dict[str, str] = {}
        for replica in entry["replicas"]:
            rse = replica["rse"]
            access = self._access(rse, replica.get("rse_id"))
            states[rse] = replica["state"]
            by_rse.setdefault(rse, [])
            lfn = {"scope": entry["scope"], "name": entry["name"], "path": replica["path"]}
            for priority, protocol in enumerate(access.protocols, start=1):
                try:
                    pfn = next(iter(protocol.lfns2pfns([lfn]).values()))
                except InvalidPath:
                    continue  # a registered path that would leave the prefix is never served
                by_rse[rse].append(pfn)
                pfns[pfn] = {
                    "rse_id": access.rse_id,
                    "rse": rse,
                    "type": access.rse_type,
                    "volatile": access.volatile,
                    "domain": self.domain,
                    "priority": priority,
                    "client_extract": False,
                }
        return {
            "scope": entry["scope"],
            "name": entry["name"],
            "bytes": entry["bytes"],
            "md5": entry["md5"],
            "adler32": entry["adler32"],
            "pfns": pfns,
            "rses": by_rse,
            "states": states,
        }
