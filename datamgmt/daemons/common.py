"""The daemon framework: a unit of work (``run_once``), the loop around it, and the process.

* :class:`Daemon` is one worker: ``run_once(batch)`` does one batch and returns how many
  items it processed.  One instance per thread; each has its own worker id, heartbeat and
  leases (:mod:`datamgmt.core.claim`), so threads, processes and hosts scale the same way.
* :class:`QueueDaemon` is the usual shape: claim a batch from a core work queue in one short
  transaction, then process each item in its own transaction — confirm the lease, make the
  one core call, complete — so a failure rolls back that item only and is counted.
* :func:`work` is the loop: heartbeat, batch, metrics, and an idle back-off that doubles up
  to ``[daemons] sleep_max``; a daemon whose queue sends wake-ups (``wakes_on``,
  :mod:`datamgmt.core.wakeup`) ends that sleep when work for it is committed.
  :class:`Runner` starts ``--threads`` workers, serves metrics and turns SIGTERM/SIGINT into
  "finish the current batch, then exit".
* A lost database (a terminated backend, a restart) fails the batch with
  :class:`DatabaseUnavailable`: its transaction rolled back, the leases of the items it had
  not finished are given back so the next cycle retries them, and the loop logs a WARNING,
  backs off and goes on, on fresh connections.  The process never needs a restart.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, ClassVar

from sqlalchemy import Row
from sqlalchemy.orm import Session

from datamgmt.config import get_config
from datamgmt.core import claim, heartbeat, wakeup
from datamgmt.core.db.session import transaction
from datamgmt.core.vo import DEFAULT_VO, catalogue_url, registered_vos
from datamgmt.core.workqueue import WorkQueue
from datamgmt.daemons import metrics
from datamgmt.daemons.logs import WorkerLogger
from datamgmt.exceptions import DatabaseUnavailable, DatamgmtError


def new_worker_id(thread_index: int) -> str:
    """Unique per thread and start: host, pid, thread and a random tail (fits ``claimed_by``)."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{thread_index}:{uuid.uuid4().hex[:8]}"


class Daemon(ABC):
    """One worker of a named daemon."""

    #: The name under which ``datamgmt-daemon`` runs it (docs/architecture.md, "Stable names").
    name: ClassVar[str]
    #: Items per batch unless ``--batch-size`` says otherwise (an instance may read it from config).
    default_batch: int = 100
    #: The queue whose producers send wake-ups (:mod:`datamgmt.core.wakeup`): an idle worker
    #: then wakes when work is committed instead of when its sleep runs out.
    wakes_on: ClassVar[WorkQueue | None] = None
    #: Whether its items place rules with the solver: the process that runs it then loads the
    #: solver's compiled kernel before the first item, as API workers do, not while that item
    #: waits (``launcher.prepare_process``).
    places_rules: ClassVar[bool] = False

    def __init__(self, worker_id: str | None = None, db_url: str | None = None, vo: str = DEFAULT_VO) -> None:
        """``db_url``: the default VO's catalogue (None: ``[database] url``); the worker works on
        ``vo``'s catalogue (core/vo.py), named here so that nothing built from the URL (a local
        transfer tool, a cache) can belong to another VO than the worker."""
        config = get_config()
        self.worker_id = worker_id or new_worker_id(0)
        self.vo = vo
        self.db_url = db_url if vo == DEFAULT_VO else catalogue_url(db_url, vo)
        self.lease_seconds = config.get_int("daemons", "lease_seconds")
        self.heartbeat_timeout = config.get_int("daemons", "heartbeat_timeout")
        #: Set by ``run_once``: True when the batch found nothing due (drives back-off and --run-once).
        self.idle = False
        self.log = WorkerLogger(
            logging.getLogger(f"datamgmt.daemons.{self.name}"),
            {"daemon": self.name, "worker": self.worker_id},
        )

    @abstractmethod
    def run_once(self, batch: int) -> int:
        """Process up to ``batch`` due items; return how many were processed."""

    def beat(self) -> None:
        """Refresh this worker's heartbeat and drop peers that stopped beating."""
        with transaction(self.db_url) as session:
            heartbeat.beat(session, self.name, self.worker_id, socket.gethostname()[:255], os.getpid())
            heartbeat.expire(session, self.heartbeat_timeout, self.name)

    def die(self) -> None:
        try:
            with transaction(self.db_url) as session:
                heartbeat.die(session, self.name, self.worker_id)
        except DatabaseUnavailable as exc:
            # The heartbeat expires by itself; stopping must not fail for it.
            self.log.warning("heartbeat not removed", extra={"fields": {"error": exc.message}})

    def record_item(self, ok: bool) -> None:
        (metrics.ITEMS_PROCESSED if ok else metrics.ITEMS_FAILED).labels(self.name).inc()


@dataclass(frozen=True)
class Item:
    """One unit of processing: the claimed keys it covers and what the core call needs."""

    keys: list[claim.Key]
    payload: Any


class QueueDaemon(Daemon):
    """Claim from a core :class:`WorkQueue`, then one transaction per item around one core call."""

    queue: ClassVar[WorkQueue]
    #: After success, the item may not be claimed again for this long (0: at once).
    hold_seconds: ClassVar[int] = 0
    #: Delete the queue rows on success (pure queues) instead of releasing them.
    consume: ClassVar[bool] = False

    def items(self, rows: Sequence[Row[Any]]) -> list[Item]:
        """Group claimed rows into items; by default each row is one item keyed by its primary key."""
        return [Item([tuple(row)], row[0] if len(row) == 1 else tuple(row)) for row in rows]

    @abstractmethod
    def process(self, session: Session, payload: Any) -> None:
        """The one core call for one item, inside the item's transaction."""

    def hold_after_success(self) -> int:
        return self.hold_seconds

    def run_once(self, batch: int) -> int:
        with transaction(self.db_url) as session:
            rows = self.queue.claim(session, self.worker_id, batch, self.lease_seconds)
        self.idle = not rows
        items = self.items(rows)
        processed = 0
        for index, item in enumerate(items):
            try:
                if self._process_item(item):
                    processed += 1
            except DatabaseUnavailable:
                self._give_back([key for rest in items[index:] for key in rest.keys])
                raise
        return processed

    def _give_back(self, keys: list[claim.Key]) -> None:
        """Release the leases of unfinished items so the next cycle retries them at once.

        Keys already completed (a commit whose outcome was unknown did succeed) are no longer
        held by us and stay as they are.  If the database is still away, the leases expire.
        """
        try:
            with transaction(self.db_url) as session:
                claim.release(session, self.queue.model, self.worker_id, keys)
        except DatabaseUnavailable as exc:
            self.log.warning("leases kept until they expire", extra={"fields": {"error": exc.message}})

    def _process_item(self, item: Item) -> bool:
        model = self.queue.model
        try:
            with transaction(self.db_url) as session:
                held = claim.confirm(session, model, self.worker_id, item.keys, self.lease_seconds)
                if len(held) != len(item.keys):
                    # Another worker took over after our lease ran out; it owns the item now.
                    session.rollback()
                    self.log.info("lease lost", extra={"fields": {"item": str(item.payload)}})
                    return False
                self.process(session, item.payload)
                if self.consume:
                    claim.complete_delete(session, model, self.worker_id, item.keys)
                else:
                    claim.release(session, model, self.worker_id, item.keys, self.hold_after_success())
        except DatabaseUnavailable:
            # Not the item's fault: the whole batch stops and is retried (see run_once).
            self.record_item(False)
            raise
        except Exception:
            # The lease stays: it is the back-off before another worker retries the item.
            self.record_item(False)
            self.log.exception("item failed", extra={"fields": {"item": str(item.payload)}})
            return False
        self.record_item(True)
        self.log.debug("item done", extra={"fields": {"item": str(item.payload), "keys": item.keys}})
        return True


def work(
    daemon: Daemon,
    stop: threading.Event,
    *,
    batch: int | None,
    once: bool,
    sleep_max: float,
    wake: threading.Event | None = None,
) -> None:
    """The loop of one worker: until ``stop`` (or, with ``once``, until nothing is due).

    ``wake`` (see :mod:`datamgmt.core.wakeup`) ends an idle sleep early when work is queued; it
    is cleared before each batch, so a notification that comes while the batch runs still ends
    the sleep after it."""
    batch = batch or daemon.default_batch
    backoff = 0.0
    daemon.log.info("worker started")
    try:
        while not stop.is_set():
            started = time.monotonic()
            if wake is not None:
                wake.clear()
            try:
                daemon.beat()
                processed = daemon.run_once(batch)
            except DatabaseUnavailable as exc:
                daemon.log.warning(
                    "batch failed, retried next cycle", extra={"fields": {"error": exc.message}}
                )
                daemon.idle = True
                processed = 0
            except Exception:
                daemon.log.exception("batch failed")
                daemon.idle = True
                processed = 0
            else:
                metrics.LAST_SUCCESS.labels(daemon.name).set_to_current_time()
            elapsed = time.monotonic() - started
            metrics.BATCH_SECONDS.labels(daemon.name).observe(elapsed)
            if processed or not daemon.idle:
                daemon.log.info(
                    "batch", extra={"fields": {"processed": processed, "seconds": round(elapsed, 3)}}
                )
            if not daemon.idle:
                backoff = 0.0
                continue
            if once:
                break
            backoff = min(sleep_max, max(1.0, backoff * 2))
            (stop if wake is None else wake).wait(backoff)
    finally:
        daemon.die()
        daemon.log.info("worker stopped")


class Runner:
    """Runs ``threads`` workers of one daemon class in this process until done or signalled."""

    def __init__(
        self,
        daemon_cls: type[Daemon],
        *,
        threads: int = 1,
        once: bool = False,
        batch: int | None = None,
        metrics_port: int | None = None,
        metrics_address: str = "127.0.0.1",
        db_url: str | None = None,
    ) -> None:
        self.daemon_cls = daemon_cls
        self.threads = max(1, threads)
        self.once = once
        self.batch = batch
        self.metrics_port = metrics_port
        self.metrics_address = metrics_address
        self.db_url = db_url
        self.stop = threading.Event()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        logging.getLogger("datamgmt.daemons").info(
            "stopping after the current batch", extra={"fields": {"signal": signal.Signals(signum).name}}
        )
        self.stop.set()

    def run(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        if self.metrics_port is not None:
            metrics.serve(self.metrics_port, self.metrics_address)
        sleep_max = get_config().get_float("daemons", "sleep_max")
        run_per_catalogue(
            lambda vo: start_workers(
                self.daemon_cls,
                vo,
                self.db_url,
                self.stop,
                threads=self.threads,
                batch=self.batch,
                once=self.once,
                sleep_max=sleep_max,
            ),
            self.db_url,
            self.stop,
            once=self.once,
        )


def run_per_catalogue(
    start: Callable[[str], list[threading.Thread]],
    db_url: str | None,
    stop: threading.Event,
    *,
    once: bool,
) -> None:
    """Start workers (``start(vo)``) on every VO's catalogue, and on each VO added while they
    run unless ``once``; return when every worker has ended.  ``db_url``: the default VO's."""
    watch = CatalogueWatch(db_url)
    workers: list[threading.Thread] = []

    def grow() -> None:
        for vo in watch.new():
            workers.extend(start(vo))

    grow()
    while alive := [thread for thread in workers if thread.is_alive()]:
        # Join in slices so the main thread keeps handling signals and sees new VOs.
        alive[0].join(0.5)
        if not once and not stop.is_set():
            grow()


#: How often a running daemon looks for VOs added since it started (core/vo.py).
VO_POLL_SECONDS = 30.0


def start_workers(
    daemon_cls: type[Daemon],
    vo: str,
    db_url: str | None,
    stop: threading.Event,
    *,
    threads: int,
    batch: int | None,
    once: bool,
    sleep_max: float,
) -> list[threading.Thread]:
    """Start ``threads`` workers of ``daemon_cls`` on ``vo``'s catalogue (``db_url``: the default VO's),
    with one listener for the process's wake-ups if the class has a channel (``wakes_on``)."""
    daemons = [daemon_cls(new_worker_id(index), db_url, vo) for index in range(threads)]
    wake = None
    if daemon_cls.wakes_on is not None and not once:
        wake = wakeup.listen(daemons[0].db_url, daemon_cls.wakes_on, stop)
    started = []
    for index, daemon in enumerate(daemons):
        suffix = f"{index}" if vo == DEFAULT_VO else f"{vo}-{index}"
        thread = threading.Thread(
            target=work,
            args=(daemon, stop),
            kwargs={"batch": batch, "once": once, "sleep_max": sleep_max, "wake": wake},
            name=f"{daemon_cls.name}-{suffix}",
        )
        thread.start()
        started.append(thread)
    return started


class CatalogueWatch:
    """Which VO catalogues a daemon process serves: the default at once, the others as they
    are registered.  Each VO's work lives in its own catalogue, so each gets its own workers,
    leases and heartbeats, and several processes partition each VO's work as they do one's."""

    def __init__(self, db_url: str | None) -> None:
        self.db_url = db_url
        self.served: set[str] = set()
        self.next_look = 0.0

    def new(self) -> list[str]:
        """The VOs not served yet, looked up at most every :data:`VO_POLL_SECONDS`; the
        default VO first."""
        now = time.monotonic()
        if self.served and now < self.next_look:
            return []
        self.next_look = now + VO_POLL_SECONDS
        try:
            found = registered_vos(self.db_url)
        except DatamgmtError as exc:
            logging.getLogger("datamgmt.daemons").warning(
                "VOs not looked up, retried later", extra={"fields": {"error": exc.message}}
            )
            found = [DEFAULT_VO]
        fresh = [vo for vo in found if vo not in self.served]
        self.served.update(fresh)
        return fresh
