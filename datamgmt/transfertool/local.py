"""The embedded transfer tool: verified gfal2 copies in a bounded thread pool of this process.

This class keeps its transfers in memory, so on its own it serves one process: a poller
elsewhere, or after a restart, gets LOST for ids it never saw.  The conveyor's ``local`` tool
(:mod:`datamgmt.daemons.conveyor.local_transfers`) keeps the state in the catalogue and uses
this class only to run the copies it claimed, under the ids it stored.  Every transfer gets an
external id (``local-<uuid>``, see :func:`local_jobs`).  A copy overwrites its destination, so
re-running an interrupted transfer is safe.

Finished transfers are remembered for ``retention`` seconds so a poller that crashed between
query and commit still finds them; after that they too are LOST (and would be re-copied).
"""

from __future__ import annotations

import errno
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from . import gfal2copy
from .base import (
    CANCELED_REASON,
    Submitted,
    TransferJob,
    TransferSpec,
    TransferState,
    TransferStatus,
    TransferTool,
)


@dataclass
class _Transfer:
    external_id: str
    spec: TransferSpec
    future: Future[None] | None = None
    status: TransferStatus | None = None
    context: Any = None  # gfal2 context of the running copy, so cancel() can abort it
    canceled: bool = False
    finished_at: float = field(default=0.0)


def local_jobs(transfers: Iterable[TransferSpec]) -> list[TransferJob]:
    """One job per transfer, or per multihop path (its hops run in order in one task).

    A job's key is its first transfer's external id, so a transfer sent again under its key
    (:attr:`~TransferSpec.job_key`) gets its id back; later hops are ``<key>.<hop index>``."""
    chains: dict[str, list[TransferSpec]] = {}
    for spec in transfers:
        chains.setdefault(spec.job_key or spec.multihop_path or spec.request_id, []).append(spec)
    jobs = []
    for chain in chains.values():
        chain.sort(key=lambda s: s.hop_index)
        key = chain[0].job_key or f"local-{uuid.uuid4()}"
        ids = {
            spec.request_id: key if position == 0 else f"{key}.{position}"
            for position, spec in enumerate(chain)
        }
        jobs.append(TransferJob(chain, ids, key))
    return jobs


class LocalTransferTool(TransferTool):
    """Copies with gfal2 in ``threads`` worker threads; each source is tried in order."""

    def __init__(
        self,
        *,
        threads: int = 4,
        gfal2_options: gfal2copy.Gfal2Options | None = None,
        timeout: int = 3600,
        retention: float = 3600.0,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        """``on_end`` is called from a copy thread each time a transfer ends, so a caller that
        records outcomes elsewhere (the catalogue) can do so at once instead of at its next poll."""
        self.gfal2_options = gfal2_options
        self.on_end = on_end
        self.timeout = timeout
        self.retention = retention
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="local-transfer")
        self._lock = threading.Lock()
        self._transfers: dict[str, _Transfer] = {}

    def prepare(self, transfers: Iterable[TransferSpec]) -> list[TransferJob]:
        return local_jobs(transfers)

    def submit(self, jobs: Iterable[TransferJob]) -> Submitted:
        """Queue each job's copies; an id already known (a job submitted twice) is not run again."""
        submitted = Submitted()
        with self._lock:
            self._purge()
            for job in jobs:
                chain = [
                    _Transfer(job.external_ids[spec.request_id], spec)
                    for spec in sorted(job.transfers, key=lambda s: s.hop_index)
                ]
                submitted.update((t.spec.request_id, t.external_id) for t in chain)
                if any(t.external_id in self._transfers for t in chain):
                    continue
                self._transfers.update((t.external_id, t) for t in chain)
                future = self._pool.submit(self._run_chain, chain)
                for item in chain:
                    item.future = future
        return submitted

    def query(self, external_ids: Iterable[str]) -> list[TransferStatus]:
        with self._lock:
            self._purge()
            return [self._status(external_id) for external_id in external_ids]

    def cancel(self, external_ids: Iterable[str]) -> None:
        with self._lock:
            items = [self._transfers[i] for i in external_ids if i in self._transfers]
            for item in items:
                item.canceled = True
                if item.context is not None:
                    item.context.cancel()
        for item in items:
            if item.future is not None:
                item.future.cancel()  # only stops copies not started yet; _status reports those

    def forget(self, external_ids: Iterable[str]) -> None:
        """Drop finished transfers whose outcome the caller has recorded elsewhere."""
        with self._lock:
            for external_id in external_ids:
                item = self._transfers.get(external_id)
                if item is not None and item.status is not None:
                    del self._transfers[external_id]

    def close(self) -> None:
        """Abort running copies and drop queued ones (their requests come back LOST next time)."""
        with self._lock:
            for item in self._transfers.values():
                item.canceled = True
                if item.context is not None:
                    item.context.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- internals --------------------------------------------------------------------------------
    def _status(self, external_id: str) -> TransferStatus:
        item = self._transfers.get(external_id)
        if item is None:
            return TransferStatus(
                None, external_id, TransferState.LOST, reason="unknown to this transfer tool"
            )
        if item.status is not None:
            return item.status
        if item.future is not None and item.future.cancelled():
            return TransferStatus(
                item.spec.request_id, external_id, TransferState.FAILED, reason=CANCELED_REASON
            )
        running = item.context is not None
        return TransferStatus(
            item.spec.request_id,
            external_id,
            TransferState.SUBMITTED,
            external_state="ACTIVE" if running else "QUEUED",
        )

    def _purge(self) -> None:
        """Forget transfers that finished more than ``retention`` seconds ago (lock held)."""
        horizon = time.monotonic() - self.retention
        for external_id in [i for i, t in self._transfers.items() if t.status and t.finished_at < horizon]:
            del self._transfers[external_id]

    def _finish(
        self,
        item: _Transfer,
        state: TransferState,
        reason: str | None = None,
        *,
        size: int | None = None,
        source: str | None = None,
    ) -> None:
        with self._lock:
            item.context = None
            item.finished_at = time.monotonic()
            item.status = TransferStatus(
                item.spec.request_id,
                item.external_id,
                state,
                reason=reason,
                transferred_bytes=size,
                source_url=source,
                external_state=state.value,
            )
        if self.on_end is not None:
            self.on_end()

    def _run_chain(self, chain: list[_Transfer]) -> None:
        for position, item in enumerate(chain):
            if not self._run(item):
                for unused in chain[position + 1 :]:
                    self._finish(unused, TransferState.FAILED, "Unused hop in multi-hop")
                return

    def _run(self, item: _Transfer) -> bool:
        """Copy from each source in turn until one verifies; record the outcome."""
        spec = item.spec
        checksums = {
            algorithm: value for algorithm, value in (("ADLER32", spec.adler32), ("MD5", spec.md5)) if value
        }
        failures: list[str] = []
        roots = [*spec.source_roots, *[None] * len(spec.sources)]
        for source, root in zip(spec.sources, roots, strict=False):
            context = gfal2copy.new_context(self.gfal2_options)
            with self._lock:
                if item.canceled:
                    break
                item.context = context
            job = gfal2copy.CopyJob(
                source=source,
                destination=spec.destination,
                checksums=checksums,
                verify=spec.verify_checksum,
                # A copy to tape may replace what an earlier attempt left on the tape buffer, as
                # FTS's overwrite_when_only_on_disk: a file already on tape has no transfer to it.
                overwrite=spec.overwrite or bool(spec.archive_timeout),
                timeout=self.timeout,
                source_root=root,
                destination_root=spec.destination_root,
            )
            try:
                size = gfal2copy.verified_copy(context, job)
            except gfal2copy.CopyFailure as failure:
                failures.append(str(failure))
                continue
            except Exception as exc:  # noqa: BLE001 - an unforeseen error fails this attempt, never hangs it
                failures.append(f"TRANSFER [{errno.EIO}] unexpected {type(exc).__name__}: {str(exc)[:300]}")
                continue
            self._finish(item, TransferState.DONE, size=size, source=source)
            return True
        if item.canceled:
            self._finish(item, TransferState.FAILED, CANCELED_REASON)
        else:
            self._finish(item, TransferState.FAILED, "; ".join(failures))
        return False
