"""Download DIDs (files, or every file of a dataset or container), in parallel.

For each file the catalogue lists its replicas; they are ranked by distance from a nearby RSE
(when the caller names one), then by the protocol's read priority, and tried in turn. A copy
whose checksum does not match the catalogue is rejected and the next replica is tried
(``datamgmt.rse.download``), each copy written under a temporary name beside its destination.

The server's scopes and names decide where files land, so every destination is checked to stay
inside the download directory first (``datamgmt.client.localpaths``); one unsafe name stops the
whole download before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from datamgmt.client.localpaths import download_targets, require_target_inside
from datamgmt.client.transfers import DEFAULT_THREADS, NullProgress, ProgressSink, ProtocolPool, run_parallel
from datamgmt.exceptions import DatamgmtError, ReplicaNotFound, RSEProtocolNotSupported
from datamgmt.rse.download import download_file
from datamgmt.rse.protocols import Protocol, ProtocolRecord

if TYPE_CHECKING:
    from datamgmt.client.client import Client

#: Rank of an RSE with no known distance: after every linked one.
NO_DISTANCE = 10**9


@dataclass
class DownloadOutcome:
    scope: str
    name: str
    path: str
    rse: str | None = None
    pfn: str | None = None
    bytes: int | None = None
    adler32: str | None = None
    #: ``(pfn, error message)`` of each replica tried and rejected before the one that served.
    fallbacks: list[tuple[str, str]] = field(default_factory=list)
    error: DatamgmtError | None = None


class ReplicaRanker:
    """Orders a file's PFNs and finds the protocol that reads each, caching RSE descriptions."""

    def __init__(self, client: Client, near: str | None, pool: ProtocolPool) -> None:
        self.client = client
        self.near = near
        self.pool = pool
        self._rses: dict[str, dict[str, Any]] = {}
        self._distances: dict[str, int] = {}

    def prepare(self, rses: set[str]) -> None:
        """Fetch, once and up front, what ranking needs (threads then only read the caches)."""
        for rse in rses - set(self._rses):
            self._rses[rse] = self.client.get_rse(rse)
            if self.near:
                links = self.client.get_distance(self.near, rse) if rse != self.near else [{"distance": 0}]
                self._distances[rse] = links[0]["distance"] if links else NO_DISTANCE

    def record_for(self, rse: str, pfn: str) -> tuple[ProtocolRecord, int]:
        """The RSE's read protocol whose scheme, host and prefix the PFN uses, and its priority."""
        info = self._rses[rse]
        parts = urlsplit(pfn)
        for raw in info.get("protocols", []):
            record = ProtocolRecord.from_mapping(raw)
            priority = record.priority("read", "wan") or record.priority("read", "lan")
            same_host = record.scheme == "file" or (parts.hostname or "") == record.hostname.lower()
            if (
                priority
                and record.scheme == parts.scheme
                and same_host
                and parts.path.startswith(record.prefix)
            ):
                return record, priority
        raise RSEProtocolNotSupported(f"{rse} offers no read protocol for {pfn}")

    def candidates(self, replica: dict[str, Any]) -> list[tuple[Protocol, str]]:
        ranked = []
        states = replica.get("states", {})
        for position, (pfn, info) in enumerate(replica.get("pfns", {}).items()):
            rse = info["rse"]
            if states.get(rse, "AVAILABLE") != "AVAILABLE":
                continue
            try:
                record, priority = self.record_for(rse, pfn)
            except RSEProtocolNotSupported:
                continue
            algorithm = self._rses[rse].get("lfn2pfn_algorithm") or "hash"
            rank = (self._distances.get(rse, NO_DISTANCE if self.near else 0), priority, position)
            ranked.append((rank, self.pool.get(record, algorithm), pfn))
        return [(protocol, pfn) for _, protocol, pfn in sorted(ranked, key=lambda item: item[0])]


def only_pfn(replicas: Sequence[dict[str, Any]], pfn: str) -> list[dict[str, Any]]:
    """Rucio's ``--pfn``: the one file whose replicas include ``pfn``, read from that copy only."""
    if len(replicas) != 1:
        raise DatamgmtError(f"--pfn downloads one file; the DIDs given hold {len(replicas)}")
    replica = replicas[0]
    if pfn not in replica.get("pfns", {}):
        known = ", ".join(replica.get("pfns", {})) or "none"
        raise ReplicaNotFound(
            f"{pfn} is not a replica of {replica['scope']}:{replica['name']} (its PFNs: {known})"
        )
    return [{**replica, "pfns": {pfn: replica["pfns"][pfn]}}]


def download(
    client: Client,
    replicas: Sequence[dict[str, Any]],
    directory: str,
    *,
    near: str | None = None,
    threads: int = DEFAULT_THREADS,
    progress: ProgressSink | None = None,
    subdir: bool = True,
) -> list[DownloadOutcome]:
    """Download each file of ``replicas`` (``client.list_replicas`` lines) to ``directory/<scope>/<name>``.

    A name that would leave ``directory`` raises InvalidPath before any download starts (see
    ``datamgmt.client.localpaths``). Any other failure never stops the others; it is recorded in
    the file's outcome. ``subdir=False`` puts files at ``directory/<name>`` (Rucio's ``--no-subdir``).
    """
    progress = progress or NullProgress()
    targets = download_targets(
        directory, [(replica["scope"], replica["name"]) for replica in replicas], subdir
    )
    ranker = ReplicaRanker(client, near, ProtocolPool())
    ranker.prepare({info["rse"] for replica in replicas for info in replica.get("pfns", {}).values()})

    def one(job: tuple[dict[str, Any], str]) -> DownloadOutcome:
        replica, path = job
        scope, name = replica["scope"], replica["name"]
        label = f"{scope}:{name}"
        outcome = DownloadOutcome(scope, name, path)
        progress.file_started(label, replica.get("bytes") or 0)
        try:
            candidates = ranker.candidates(replica)
            if not candidates:
                raise ReplicaNotFound(f"{label} has no available replica readable here")
            # Again at the last moment: the directory may have changed since it was planned.
            require_target_inside(directory, path)
            result = download_file(
                candidates,
                outcome.path,
                adler32=replica.get("adler32"),
                md5=replica.get("md5"),
                size=replica.get("bytes"),
                progress_callback=lambda done: progress.file_advanced(label, done),
            )
            outcome.pfn, outcome.bytes, outcome.adler32 = result.pfn, result.size, result.adler32
            outcome.rse = replica["pfns"][result.pfn]["rse"]
            outcome.fallbacks = [(pfn, error.message) for pfn, error in result.failures]
        except DatamgmtError as error:
            outcome.error = error
        progress.file_finished(label, outcome.error is None)
        return outcome

    return list(run_parallel(one, list(zip(replicas, targets, strict=True)), threads))
