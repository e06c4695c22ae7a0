"""The conveyor's ``local`` transfer tool: state in the catalogue, copies in this process.

The copies themselves are :class:`~datamgmt.transfertool.local.LocalTransferTool`'s (gfal2,
verified at both ends), but which transfers exist, who copies them and how they ended lives in
the catalogue (:mod:`datamgmt.core.local_transfer`), so every shape of deployment works:

* submitter and poller in separate processes, or on separate hosts: ``submit`` stores the
  transfers, ``query`` reads them back, wherever it runs;
* a process that dies mid-copy: the copying worker renews its lease every ``lease / 5``
  seconds, and once it stops, the chain's lease runs out and any submitter's tool claims it
  and copies it again (an interrupted copy is overwritten; it is not a counted attempt);
* no file copied twice at once: a transfer is only claimed while no other transfer to its
  destination is held under a live lease, and a worker that cannot renew its leases for half
  a lease (its database is gone) aborts its copies before anyone may take them over;
* ``--run-once``: the submitter waits (:meth:`CatalogueLocalTool.settle`) until the copies it
  started have ended and been recorded before it reports itself idle and exits;
* tape (:mod:`datamgmt.core.local_tape`): a source on a TAPE RSE is staged (STAGING for
  ``staging_seconds``, then pinned) before it is read, and a copy to tape is DONE only once
  archived (ARCHIVING for ``archive_seconds``); those phases end by time, advanced by whichever
  process syncs or queries next, so a poller alone sees them through.

Only processes that submit copy (:meth:`CatalogueLocalTool.start_copying`); a poller or finisher
process only reads and cancels.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from datamgmt.core import local_tape
from datamgmt.core import local_transfer as store
from datamgmt.core.db.session import transaction
from datamgmt.exceptions import DatabaseUnavailable, DatamgmtError
from datamgmt.transfertool.base import (
    Pin,
    Submitted,
    TransferJob,
    TransferSpec,
    TransferState,
    TransferStatus,
    TransferTool,
)
from datamgmt.transfertool.local import LocalTransferTool, local_jobs

log = logging.getLogger(__name__)

#: Copier states that end a chain here (LOST: the copier forgot it, recorded as a failed copy).
_ENDED = (TransferState.DONE, TransferState.FAILED, TransferState.LOST)
#: The spec fields stored with a transfer: what a copy needs, wherever it is run.
_STORED_FIELDS = (
    "sources",
    "destination",
    "bytes",
    "adler32",
    "md5",
    "activity",
    "priority",
    "rule_id",
    "overwrite",
    "verify_checksum",
    "multihop_path",
    "hop_index",
    "source_roots",
    "destination_root",
    "bring_online",
    "copy_pin_lifetime",
    "archive_timeout",
)


def _stored(job: TransferJob) -> list[store.StoredTransfer]:
    spec_fields = [{name: asdict(spec)[name] for name in _STORED_FIELDS} for spec in job.transfers]
    return [
        store.StoredTransfer(
            job.external_ids[spec.request_id],
            spec.request_id,
            job.key,
            spec.hop_index,
            spec.destination,
            fields,
        )
        for spec, fields in zip(job.transfers, spec_fields, strict=True)
    ]


def _job(chain: list[store.StoredTransfer]) -> TransferJob:
    specs = [TransferSpec(request_id=t.request_id, **t.spec) for t in chain]
    return TransferJob(specs, {t.request_id: t.id for t in chain}, chain[0].chain)


class CatalogueLocalTool(TransferTool):
    """The local tool whose transfers live in the catalogue at ``db_url``."""

    def __init__(
        self,
        db_url: str | None,
        *,
        lease_seconds: int = 30,
        retention: float = 3600.0,
        staging_seconds: float = 0.0,
        archive_seconds: float = 0.0,
    ) -> None:
        """``staging_seconds`` and ``archive_seconds``: how long a recall from, and an archive
        to, a TAPE RSE served by local storage take."""
        self.db_url = db_url
        self.staging_seconds = max(0.0, staging_seconds)
        self.archive_seconds = max(0.0, archive_seconds)
        self.lease_seconds = max(2, lease_seconds)
        self.retention = retention
        self.worker = f"{socket.gethostname()[:24]}:{os.getpid()}:local:{uuid.uuid4().hex[:8]}"
        self._copier: LocalTransferTool | None = None
        self._slots = 0
        #: chain → external ids of the chains this process is copying.
        self._running: dict[str, list[str]] = {}
        self._sync_lock = threading.Lock()
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._renewed = time.monotonic()
        self._purged = 0.0

    # -- the TransferTool contract ------------------------------------------------------------
    def prepare(self, transfers: Iterable[TransferSpec]) -> list[TransferJob]:
        return local_jobs(transfers)

    def submit(self, jobs: Iterable[TransferJob]) -> Submitted:
        """Store the jobs' transfers; a job stored before (sent again under its key) is kept, not
        doubled.  The copying thread is woken to start them."""
        jobs = list(jobs)
        with transaction(self.db_url) as session:
            held = store.add_transfers(
                session, [t for job in jobs for t in _stored(job)], self.staging_seconds
            )
        self._wake.set()
        return Submitted({rid: eid for job in jobs for rid, eid in job.external_ids.items() if eid in held})

    def query(self, external_ids: Iterable[str]) -> list[TransferStatus]:
        ids = list(external_ids)
        with transaction(self.db_url) as session:
            local_tape.advance(session)  # a tape phase that is over ends now, whoever asks
            rows = store.transfer_rows(session, ids)
        return [self._status(external_id, rows.get(external_id)) for external_id in ids]

    def cancel(self, external_ids: Iterable[str]) -> None:
        with transaction(self.db_url) as session:
            store.cancel(session, list(external_ids))
        self._wake.set()

    def release(self, pins: Iterable[Pin]) -> None:
        """Cancel recalls still running and drop the staged markers: the files go offline."""
        pins = list(pins)
        with transaction(self.db_url) as session:
            store.cancel(session, [pin.external_id for pin in pins if pin.external_id])
            local_tape.release(session, [pin.url for pin in pins if pin.url])

    def close(self) -> None:
        """Stop copying: running chains are aborted and given back, so another worker runs them."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._copier is not None:
            self._copier.close()
        with self._sync_lock:
            chains, self._running = list(self._running), {}
        if chains:
            try:
                with transaction(self.db_url) as session:
                    store.give_back(session, self.worker, chains)
            except DatabaseUnavailable:
                log.warning(
                    "local transfers not given back; their leases run out",
                    extra={"fields": {"chains": len(chains)}},
                )

    # -- copying ------------------------------------------------------------------------------
    @property
    def copying(self) -> bool:
        return self._copier is not None

    def start_copying(self, copier: LocalTransferTool, slots: int) -> None:
        """Copy in this process with ``copier``, ``slots`` chains at a time (the submitter's process).
        Each copy that ends wakes the syncing thread, which records it and fills its slot at once:
        a slot left idle until the next periodic sync is what bounded the throughput of small files."""
        with self._sync_lock:
            if self._copier is not None:
                copier.close()
                return
            self._copier, self._slots = copier, max(1, slots)
            copier.on_end = self._wake.set
        self._thread = threading.Thread(target=self._loop, name="local-transfers", daemon=True)
        self._thread.start()

    def settle(self, timeout: float) -> int:
        """Sync now, then wait up to ``timeout`` seconds for this process's copies to end and be
        recorded; returns how many chains it is still copying (``--run-once`` waits for 0)."""
        if self._copier is None:
            return 0
        deadline = time.monotonic() + timeout
        self.sync()
        with self._changed:
            self._changed.wait_for(lambda: not self._running, max(0.0, deadline - time.monotonic()))
        return len(self._running)

    def sync(self) -> None:
        """One round: record ended copies, renew the leases of running ones (stopping those taken
        over or canceled), claim due chains into free slots, and now and then purge old rows."""
        if self._copier is None:
            return
        with self._sync_lock:
            try:
                with transaction(self.db_url) as session:
                    local_tape.advance(session)
                    self._record_ended(session)
                    self._renew(session)
                    if time.monotonic() - self._purged > 60:
                        store.purge(session, self.retention)
                        self._purged = time.monotonic()
                self._claim()
            except DatamgmtError as exc:
                log.warning("local transfers not synced", extra={"fields": {"error": str(exc)[:300]}})
                self._abort_if_unrenewed()
        with self._changed:
            self._changed.notify_all()

    def _loop(self) -> None:
        interval = self.lease_seconds / 5
        while not self._stop.is_set():
            try:
                self.sync()
            except Exception:  # the thread that renews leases must outlive any one round
                log.exception("local transfers: sync failed")
            self._wake.wait(interval)
            self._wake.clear()

    def _record_ended(self, session: Any) -> None:
        assert self._copier is not None
        ids = [i for ids in self._running.values() for i in ids]
        statuses = {s.external_id: s for s in self._copier.query(ids)}
        ended = [
            chain for chain, ids in self._running.items() if all(statuses[i].state in _ENDED for i in ids)
        ]
        outcomes = [
            store.Outcome(
                i,
                store.DONE if statuses[i].state is TransferState.DONE else store.FAILED,
                statuses[i].reason,
                statuses[i].transferred_bytes,
                statuses[i].source_url,
            )
            for chain in ended
            for i in self._running[chain]
        ]
        store.finish(session, self.worker, outcomes, self.archive_seconds)
        for chain in ended:
            self._copier.forget(self._running.pop(chain))

    def _renew(self, session: Any) -> None:
        assert self._copier is not None
        held, canceled = store.renew(session, self.worker, list(self._running), self.lease_seconds)
        self._renewed = time.monotonic()
        for chain in [c for c in self._running if c not in held]:  # taken over: stop copying it
            ids = self._running.pop(chain)
            log.warning(
                "local transfer taken over by another worker; copy stopped",
                extra={"fields": {"chain": chain}},
            )
            self._copier.cancel(ids)
            self._copier.forget(ids)
        for chain in canceled:
            self._copier.cancel(self._running[chain])

    def _claim(self) -> None:
        """Claim due chains into the free slots; the leases are committed before any copy starts."""
        assert self._copier is not None
        free = self._slots - len(self._running)
        if free <= 0 or self._stop.is_set():
            return
        chains: dict[str, list[store.StoredTransfer]] = {}
        with transaction(self.db_url) as session:
            for transfer in store.claim_due(session, self.worker, free, self.lease_seconds):
                chains.setdefault(transfer.chain, []).append(transfer)
        if not chains:
            return
        self._copier.forget(t.id for chain in chains.values() for t in chain)
        self._copier.submit([_job(chain) for chain in chains.values()])
        for chain, transfers in chains.items():
            self._running[chain] = [t.id for t in transfers]

    def _abort_if_unrenewed(self) -> None:
        """Half a lease without a renewal: another worker may soon take the chains over, so stop
        copying them first (they are copied again by whoever claims them)."""
        if not self._running or time.monotonic() - self._renewed < self.lease_seconds / 2:
            return
        assert self._copier is not None
        ids = [i for ids in self._running.values() for i in ids]
        log.warning(
            "local transfers' leases not renewed for half a lease; copies stopped",
            extra={"fields": {"chains": len(self._running)}},
        )
        self._copier.cancel(ids)
        self._copier.forget(ids)
        self._running.clear()

    @staticmethod
    def _status(external_id: str, row: store.TransferRow | None) -> TransferStatus:
        if row is None:
            return TransferStatus(
                None, external_id, TransferState.LOST, reason="unknown to the local transfer tool"
            )
        times = {
            "staging_started": row.staging_started,
            "staging_finished": row.staging_finished,
            "archive_started": row.archive_started,
            "archive_finished": row.archive_finished,
        }
        if row.state in store.TAPE_PHASES:
            return TransferStatus(
                row.request_id, external_id, TransferState.SUBMITTED, external_state=row.state, **times
            )
        if row.state in (store.QUEUED, store.ACTIVE):
            return TransferStatus(
                row.request_id,
                external_id,
                TransferState.SUBMITTED,
                external_state="ACTIVE" if row.running else "QUEUED",
                **times,
            )
        state = TransferState.DONE if row.state == store.DONE else TransferState.FAILED
        return TransferStatus(
            row.request_id,
            external_id,
            state,
            reason=row.reason,
            transferred_bytes=row.transferred_bytes,
            source_url=row.source_url,
            external_state=row.state,
            **times,
        )
