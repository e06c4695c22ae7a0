"""The FTS3 double's engine: the job store, copy workers, and fault-injection knobs.

Copies run for real in a pool of worker threads through the same verified gfal2 copy the
embedded transfer tool uses, so the files a test finds on storage are the files FTS would have
left there.  ``instant`` mode skips the copies and finishes jobs at submission (benchmarks).

Tape is modelled as FTS sees it, without a tape library: a staging job's file waits
``Faults.staging_seconds`` in STAGING (the bring-online) before its copy, and a file copied by a
job with ``archive_timeout`` waits ``Faults.archive_seconds`` in ARCHIVING (the tape system
writing it from its buffer) before it is FINISHED.  A bring-online can be made to fail by source
prefix, and archiving to never complete by destination prefix, which FTS reports as a failure once
``archive_timeout`` has passed.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from datamgmt.transfertool import gfal2copy

from .builder import build_job
from .store import ARCHIVE, ARCHIVED, COPY, STAGE, STAGED, JobStore, Next

log = logging.getLogger(__name__)

#: How often a held copy (``Faults.hold_copies``) looks again whether it may start.
HOLD_RECHECK_SECONDS = 0.1
_CHECKSUM_MODES = {"b": "both", "s": "source", "t": "target", "n": "none"}
STAGING_FAILURE = "STAGING [70] Bring-online failed: the file could not be recalled from tape"


@dataclass
class Faults:
    """Knobs a test turns to make the double misbehave; all of them are thread-safe to set."""

    #: Answer the next N HTTP requests with this status (FTS's error JSON body) instead of serving.
    fail_requests: int = 0
    fail_status: int = 500
    #: Hold the answer of the next N requests back by this many seconds (the request is served).
    delay_requests: int = 0
    delay_seconds: float = 0.0
    #: Only requests with this method and path count towards ``delay_requests`` (None: any).
    delay_route: tuple[str, str] | None = None
    #: Hold the next N requests (to ``stall_route`` only, if set) *before* serving them, until
    #: :meth:`release`: a request that reaches FTS after its client gave up on it.
    stall_requests: int = 0
    stall_route: tuple[str, str] | None = None
    #: Stalled requests served since their release.
    stalled_served: int = 0
    #: Leave submitted files waiting: no copy starts (a scheduler that never schedules them).
    hold_copies: bool = False
    #: Answer 404 for every job, as FTS does once its history was purged (copies still run).
    forget_jobs: bool = False
    #: Destination URL prefix → reason: files to such destinations fail without copying.
    failing_destinations: dict[str, str] = field(default_factory=dict)
    #: Seconds a bring-online takes (STAGING), and the tape system takes to archive (ARCHIVING).
    staging_seconds: float = 0.0
    archive_seconds: float = 0.0
    #: Source URL prefix → reason: bring-online of such files fails after ``staging_seconds``.
    failing_staging: dict[str, str] = field(default_factory=dict)
    #: Destination URL prefixes whose files never reach tape: FTS fails them at ``archive_timeout``.
    unarchived_destinations: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _released: threading.Event = field(default_factory=threading.Event, repr=False)
    _served: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self.fail_requests, self.fail_status = count, status

    def delay_next(self, count: int, seconds: float, route: tuple[str, str] | None = None) -> None:
        """Answer the next ``count`` requests (those to ``route`` = (method, path) only, if given)
        ``seconds`` late: the request is served first, so a client that times out meanwhile
        never learns that it succeeded."""
        with self._lock:
            self.delay_requests, self.delay_seconds, self.delay_route = count, seconds, route

    def stall_next(self, count: int, route: tuple[str, str] | None = None) -> None:
        """Hold the next ``count`` requests (to ``route`` only, if given) until :meth:`release`."""
        with self._lock:
            self.stall_requests, self.stall_route = count, route
            self._released.clear()

    def release(self) -> None:
        """Let the stalled requests through (and any later ones of the count)."""
        with self._lock:
            self.stall_requests = 0
        self._released.set()

    def stall(self, method: str, path: str) -> bool:
        """Wait until :meth:`release` if this request is one to stall; whether it was."""
        with self._lock:
            if self.stall_requests <= 0 or self.stall_route not in (None, (method, path)):
                return False
            self.stall_requests -= 1
        self._released.wait()
        return True

    def stalled_request_served(self) -> None:
        with self._served:
            self.stalled_served += 1
            self._served.notify_all()

    def wait_stalled_served(self, count: int, timeout: float = 30.0) -> bool:
        """Wait until ``count`` stalled requests have been served since their release."""
        with self._served:
            return self._served.wait_for(lambda: self.stalled_served >= count, timeout)

    def fail_destination(
        self, prefix: str, reason: str = "DESTINATION [113] Destination endpoint is down"
    ) -> None:
        with self._lock:
            self.failing_destinations[prefix] = reason

    def fail_staging(self, prefix: str, reason: str = STAGING_FAILURE) -> None:
        with self._lock:
            self.failing_staging[prefix] = reason

    def never_archive(self, prefix: str) -> None:
        with self._lock:
            self.unarchived_destinations.add(prefix)

    def staging_failure(self, url: str) -> str | None:
        with self._lock:
            return next((r for p, r in self.failing_staging.items() if url.startswith(p)), None)

    def archives(self, url: str) -> bool:
        with self._lock:
            return not any(url.startswith(p) for p in self.unarchived_destinations)

    def take_failure(self) -> int | None:
        """Consume one injected failure; the status to answer, or None."""
        with self._lock:
            if self.fail_requests <= 0:
                return None
            self.fail_requests -= 1
            return self.fail_status

    def take_delay(self, method: str, path: str) -> float:
        with self._lock:
            if self.delay_requests <= 0 or self.delay_route not in (None, (method, path)):
                return 0.0
            self.delay_requests -= 1
            return self.delay_seconds

    def destination_failure(self, url: str) -> str | None:
        with self._lock:
            return next((r for p, r in self.failing_destinations.items() if url.startswith(p)), None)


class Fts3Double:
    """State and behaviour behind the REST routes (see :mod:`tests.fts3_double.app`)."""

    def __init__(
        self,
        *,
        workers: int = 4,
        instant: bool = False,
        allow_local_files: bool = True,
        gfal2_options: gfal2copy.Gfal2Options | None = None,
        copy_timeout: int = 600,
        default_retry: int = 0,
        vo_name: str = "datamgmt",
        require_token: str | None = None,
    ) -> None:
        """``allow_local_files`` lifts FTS's "Can not transfer local files" rule so tests can copy
        between plain directories; ``require_token`` makes every request need that bearer token."""
        self.store = JobStore()
        self.faults = Faults()
        self.instant = instant
        self.allow_local_files = allow_local_files
        self.gfal2_options = gfal2_options
        self.copy_timeout = copy_timeout
        self.default_retry = default_retry
        self.vo_name = vo_name
        self.require_token = require_token
        self._queue: queue.Queue[Next | None] = queue.Queue()
        self._copying: dict[int, Any] = {}  # file_id → gfal2 context of the running copy
        self._copying_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, name=f"fts3-double-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    # -- API used by the routes -------------------------------------------------------------
    def submit(self, body: Any, credentials: dict[str, Any]) -> str:
        job, files = build_job(
            body, credentials, allow_local_files=self.allow_local_files, default_retry=self.default_retry
        )
        scheduled = self.store.add(job, files)
        if self.instant:
            self.store.complete_instantly(job["job_id"])
        else:
            self._schedule(scheduled)
        return job["job_id"]

    def cancel(self, job_id: str) -> tuple[dict[str, Any], list[int], bool] | None:
        result = self.store.cancel(job_id)
        if result:
            with self._copying_lock:
                contexts = [self._copying[f] for f in result[1] if f in self._copying]
            # Like FTS, answer at once and let the running copies abort in the background:
            # gfal2's cancel can take seconds, longer than a client's read timeout.
            for ctx in contexts:
                threading.Thread(target=ctx.cancel, name=f"cancel-{job_id}", daemon=True).start()
        return result

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=5)

    # -- workers ----------------------------------------------------------------------------
    def _schedule(self, items: list[Next]) -> None:
        for item in items:
            if item.delay > 0:
                timer = threading.Timer(
                    item.delay, self._queue.put, args=(dataclasses.replace(item, delay=0.0),)
                )
                timer.daemon = True
                timer.start()
            else:
                self._queue.put(item)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.faults.hold_copies and item.phase == COPY:
                self._schedule([dataclasses.replace(item, delay=HOLD_RECHECK_SECONDS)])
                continue
            try:
                self._step(item)
            except Exception:  # a worker must survive any single copy
                log.exception("%s of %s/%s crashed", item.phase, item.job_id, item.file_id)
                end = {STAGED: self.store.end_staging, ARCHIVED: self.store.end_archiving}.get(
                    item.phase, self.store.finish
                )
                self._schedule(end(item.job_id, item.file_id, reason="TRANSFER [5] internal error"))

    def _step(self, item: Next) -> None:
        if item.phase == STAGE:
            row = self.store.begin_staging(item.job_id, item.file_id, socket.gethostname())
            if row is not None:
                reason = self.faults.staging_failure(row["source_surl"])
                self._schedule([Next(item.job_id, item.file_id, self.faults.staging_seconds, STAGED, reason)])
        elif item.phase == STAGED:
            self._schedule(self.store.end_staging(item.job_id, item.file_id, reason=item.reason))
        elif item.phase == ARCHIVED:
            self._schedule(self.store.end_archiving(item.job_id, item.file_id, reason=item.reason))
        else:
            self._run(item)

    def _archiving(self, item: Next, row: dict[str, Any]) -> Next:
        """How the tape system will answer for a file just copied to its buffer: archived after
        ``archive_seconds``, or FTS's failure once ``archive_timeout`` passes first."""
        timeout = float(row["_job"]["archive_timeout"])
        if self.faults.archives(row["dest_surl"]) and self.faults.archive_seconds < timeout:
            return Next(item.job_id, item.file_id, self.faults.archive_seconds, ARCHIVED)
        reason = f"TRANSFER [62] Archiving timeout of {int(timeout)} seconds exceeded: file not on tape"
        return Next(item.job_id, item.file_id, timeout, ARCHIVED, reason)

    def _run(self, item: Next) -> None:
        row = self.store.claim(item.job_id, item.file_id, socket.gethostname())
        if row is None:
            return
        reason = self.faults.destination_failure(row["dest_surl"])
        size = 0
        if reason is None:
            ctx = gfal2copy.new_context(self.gfal2_options)
            with self._copying_lock:
                self._copying[item.file_id] = ctx
            try:
                size = gfal2copy.verified_copy(ctx, self._copy_job(row))
            except gfal2copy.CopyFailure as failure:
                reason = str(failure)
            finally:
                with self._copying_lock:
                    self._copying.pop(item.file_id, None)
        scheduled = self.store.finish(item.job_id, item.file_id, reason=reason, filesize=size)
        self._schedule([self._archiving(n, row) if n.phase == ARCHIVE else n for n in scheduled])

    def _copy_job(self, row: dict[str, Any]) -> gfal2copy.CopyJob:
        job = row["_job"]
        algorithm, _, value = row["checksum"].partition(":")
        return gfal2copy.CopyJob(
            source=row["source_surl"],
            destination=row["dest_surl"],
            checksums={algorithm.upper(): value} if value else {},
            verify=_CHECKSUM_MODES[job["verify_checksum"]],
            overwrite=job["overwrite_flag"] is not None,
            timeout=self.copy_timeout,
        )
