"""reaper: deletes unlocked replicas whose tombstone has passed, storage first, catalogue after.

Per RSE: ask the storage how much space it has (:meth:`Protocol.space
<datamgmt.rse.protocols.Protocol.space>`: statvfs, a gfal2 space query; nothing for S3) and
let core refresh the RSE's ``storage`` usage from that and the configured capacity, then ask
how much must go (:func:`~datamgmt.core.deletion.bytes_to_free`) and lease that much, least
recently used first.  Each file then goes through the three steps of
:mod:`datamgmt.core.deletion`, each in its own transaction around the physical delete:
confirm it (the point of no return: still unlocked, still this worker's, else a rule has
taken it back and the file stays), delete it through the RSE's preferred ``delete``
protocol, then drop its row with a delete that re-checks the lock count and the lease, so a
rule that wanted the file in between keeps its row and gets the file back by transfer.

A file already gone from storage counts as deleted; a file whose path another replica row
on the RSE uses is never deleted, only its row goes.  A confirmation is not acted on once
the lease it took may have run out (a stalled process), because the lease end is when a
rule's transfer replacing the file may start.  A failed physical deletion keeps the row,
counts the failure and is retried after an exponential back-off, so a flaky endpoint loses
nothing.  Many instances are safe: leases keep them off each other's replicas.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from datamgmt.config import get_config
from datamgmt.core import deletion
from datamgmt.core.db.session import transaction
from datamgmt.core.rse import protocols_by_rse_id
from datamgmt.core.vo import DEFAULT_VO
from datamgmt.daemons.common import Daemon
from datamgmt.exceptions import RSEProtocolNotSupported, SourceNotFound
from datamgmt.rse.protocols import Protocol, create_protocol, select_protocol

#: Builds the protocol for an RSE's preferred delete record (tests wrap it to inject faults).
ProtocolFactory = Callable[[Mapping[str, Any]], Protocol]

#: Share of a confirmed lease after which its physical delete may no longer start.
LEASE_USABLE_SHARE = 0.9


class Reaper(Daemon):
    name = "reaper"

    #: Seconds before a failed deletion is retried: base × 2^(failures so far), capped at the lease.
    retry_base_seconds = 2

    def __init__(self, worker_id: str | None = None, db_url: str | None = None, vo: str = DEFAULT_VO) -> None:
        super().__init__(worker_id, db_url, vo)
        self.default_batch = get_config().get_int("reaper", "chunk_size")
        self.protocol_factory: ProtocolFactory = create_protocol

    def run_once(self, batch: int) -> int:
        with transaction(self.db_url) as session:
            rses = deletion.deletable_rses(session)
            records = protocols_by_rse_id(session, [rse_id for rse_id, _ in rses])
        processed = 0
        claimed_any = False
        for rse_id, rse in rses:
            protocol = self._protocol(records[rse_id], rse)
            reported = self._space(protocol, rse)
            with transaction(self.db_url) as session:
                deletion.refresh_storage_usage(session, rse_id, reported)
                needed = deletion.bytes_to_free(session, rse_id)
                replicas = deletion.claim_for_deletion(
                    session, rse_id, self.worker_id, needed, batch, self.lease_seconds
                )
            if not replicas:
                continue
            claimed_any = True
            self.log.info(
                "deleting", extra={"fields": {"rse": rse, "replicas": len(replicas), "needed": needed}}
            )
            for replica in replicas:
                processed += self._delete(protocol, rse_id, replica)
        self.idle = not claimed_any
        return processed

    def _protocol(self, records: list[dict[str, Any]], rse: str) -> Protocol | None:
        if not records:
            return None
        try:
            return self.protocol_factory(select_protocol(records, "delete"))
        except RSEProtocolNotSupported as exc:
            self.log.warning("no usable delete protocol", extra={"fields": {"rse": rse, "error": str(exc)}})
            return None

    def _space(self, protocol: Protocol | None, rse: str) -> tuple[int, int] | None:
        """(total, free) bytes as the storage reports them, or None (core then uses the capacity)."""
        if protocol is None:
            return None
        try:
            space = protocol.space()
        except Exception as exc:
            self.log.warning("space query failed", extra={"fields": {"rse": rse, "error": str(exc)}})
            return None
        return None if space is None else (space.total, space.free)

    def _delete(self, protocol: Protocol | None, rse_id: str, replica: dict[str, Any]) -> int:
        key = (replica["scope"], replica["name"], rse_id)
        deadline = time.monotonic() + self.lease_seconds * LEASE_USABLE_SHARE
        with transaction(self.db_url) as session:
            confirmed = deletion.confirm_deletion(
                session, self.worker_id, rse_id, [key[:2]], self.lease_seconds
            )
        if not confirmed:
            self.log.info("replica taken back before deletion", extra={"fields": {"replica": key}})
            return 0
        doomed = confirmed[0]
        try:
            if doomed["shared"]:
                self.log.warning(
                    "path used by another replica: only the row goes", extra={"fields": {"replica": key}}
                )
            else:
                self._delete_file(protocol, rse_id, doomed, deadline)
        except Exception as exc:
            backoff = min(self.lease_seconds, self.retry_base_seconds * 2 ** doomed["delete_failures"])
            with transaction(self.db_url) as session:
                deletion.deletion_failed(
                    session, self.worker_id, key, f"{type(exc).__name__}: {exc}", backoff
                )
            self.record_item(False)
            self.log.warning(
                "physical deletion failed", extra={"fields": {"replica": key, "error": str(exc)}}
            )
            return 0
        try:
            with transaction(self.db_url) as session:
                done = deletion.forget_replicas(session, self.worker_id, rse_id, [key[:2]])
        except Exception:
            # Storage is clean but the row stays; the next attempt finds the file gone and finishes.
            self.record_item(False)
            self.log.exception("catalogue deletion failed", extra={"fields": {"replica": key}})
            return 0
        if not done:
            self.log.warning(
                "replica wanted again after its deletion: it is copied back",
                extra={"fields": {"replica": key}},
            )
        self.record_item(bool(done))
        return done

    @staticmethod
    def _delete_file(
        protocol: Protocol | None, rse_id: str, replica: dict[str, Any], deadline: float
    ) -> None:
        if protocol is None:
            raise RSEProtocolNotSupported(f"no delete protocol on RSE {rse_id}")
        (pfn,) = protocol.lfns2pfns([replica]).values()
        if time.monotonic() > deadline:
            raise TimeoutError("the deletion lease ran out before the physical delete could start")
        try:
            protocol.delete(pfn)
        except SourceNotFound:
            pass  # already gone: the catalogue catches up


DAEMON = Reaper
