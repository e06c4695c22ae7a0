"""reaper: deletes unlocked replicas whose tombstone has passed, storage first, catalogue after.

Per RSE and batch: ask core how much must go (:func:`~datamgmt.core.deletion.bytes_to_free`),
lease that much (least recently used first), delete each file through the RSE's preferred
``delete`` protocol, then drop its catalogue row in its own transaction.  A file already
gone from storage counts as deleted.  A failed physical deletion keeps the row, counts the
failure and is retried after an exponential back-off, so a flaky endpoint loses nothing.
Many instances are safe: leases keep them off each other's replicas.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from datamgmt.config import get_config
from datamgmt.core import deletion
from datamgmt.core.db.session import transaction
from datamgmt.core.rse import protocols_by_rse_id
from datamgmt.daemons.common import Daemon
from datamgmt.exceptions import RSEProtocolNotSupported, SourceNotFound
from datamgmt.rse.protocols import Protocol, create_protocol, select_protocol

#: Builds the protocol for an RSE's preferred delete record (tests wrap it to inject faults).
ProtocolFactory = Callable[[Mapping[str, Any]], Protocol]


class Reaper(Daemon):
    name = "reaper"

    #: Seconds before a failed deletion is retried: base × 2^(failures so far), capped at the lease.
    retry_base_seconds = 2

    def __init__(self, worker_id: str | None = None, db_url: str | None = None) -> None:
        super().__init__(worker_id, db_url)
        self.default_batch = get_config().get_int("reaper", "chunk_size")
        self.protocol_factory: ProtocolFactory = create_protocol

    def run_once(self, batch: int) -> int:
        with transaction(self.db_url) as session:
            rses = deletion.deletable_rses(session)
        processed = 0
        claimed_any = False
        for rse_id, rse in rses:
            with transaction(self.db_url) as session:
                needed = deletion.bytes_to_free(session, rse_id)
                replicas = deletion.claim_for_deletion(session, rse_id, self.worker_id, needed, batch, self.lease_seconds)
                records = protocols_by_rse_id(session, [rse_id])[rse_id] if replicas else []
            if not replicas:
                continue
            claimed_any = True
            self.log.info("deleting", extra={"fields": {"rse": rse, "replicas": len(replicas), "needed": needed}})
            protocol = self.protocol_factory(select_protocol(records, "delete")) if records else None
            for replica in replicas:
                processed += self._delete(protocol, rse_id, replica)
        self.idle = not claimed_any
        return processed

    def _delete(self, protocol: Protocol | None, rse_id: str, replica: dict[str, Any]) -> int:
        key = (replica["scope"], replica["name"], rse_id)
        try:
            if protocol is None:
                raise RSEProtocolNotSupported(f"no delete protocol on RSE {rse_id}")
            (pfn,) = protocol.lfns2pfns([replica]).values()
            try:
                protocol.delete(pfn)
            except SourceNotFound:
                pass  # already gone: the catalogue catches up
        except Exception as exc:
            backoff = min(self.lease_seconds, self.retry_base_seconds * 2 ** replica["delete_failures"])
            with transaction(self.db_url) as session:
                deletion.deletion_failed(session, self.worker_id, key, f"{type(exc).__name__}: {exc}", backoff)
            self.record_item(False)
            self.log.warning("physical deletion failed", extra={"fields": {"replica": key, "error": str(exc)}})
            return 0
        try:
            with transaction(self.db_url) as session:
                done = deletion.forget_replicas(session, self.worker_id, rse_id, [key[:2]], self.lease_seconds)
        except Exception:
            # Storage is clean but the row stays; the next attempt finds the file gone and finishes.
            self.record_item(False)
            self.log.exception("catalogue deletion failed", extra={"fields": {"replica": key}})
            return 0
        self.record_item(bool(done))
        return done


DAEMON = Reaper
