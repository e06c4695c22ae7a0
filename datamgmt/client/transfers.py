"""What uploads and downloads share: progress reporting, protocol instances and parallel runs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from datamgmt.rse.protocols import Protocol as StorageProtocol
from datamgmt.rse.protocols import ProtocolRecord, create_protocol

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_THREADS = 4


class ProgressSink(Protocol):
    """Receives per-file byte counts; the CLI draws bars from them, a library user may ignore them."""

    def file_started(self, label: str, total: int) -> None: ...

    def file_advanced(self, label: str, done: int) -> None:
        """``done`` is the cumulative byte count of this attempt (a retry starts again at 0)."""

    def file_finished(self, label: str, ok: bool) -> None: ...


class NullProgress:
    def file_started(self, label: str, total: int) -> None:
        """Nothing to draw."""

    def file_advanced(self, label: str, done: int) -> None:
        """Nothing to draw."""

    def file_finished(self, label: str, ok: bool) -> None:
        """Nothing to draw."""


class ProtocolPool:
    """One storage protocol instance per thread and record: gfal2 contexts are not thread-safe."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(
        self, record: ProtocolRecord | Mapping[str, Any], lfn2pfn_algorithm: str = "hash"
    ) -> StorageProtocol:
        record = ProtocolRecord.from_mapping(record)
        cache: dict[tuple[Any, ...], StorageProtocol] = self._local.__dict__.setdefault("cache", {})
        # Records hold dicts (domains), so they are not hashable themselves.
        key = (record.scheme, record.hostname, record.port, record.prefix, record.impl, lfn2pfn_algorithm)
        if key not in cache:
            cache[key] = create_protocol(record, lfn2pfn_algorithm=lfn2pfn_algorithm)
        return cache[key]


def run_parallel(work: Callable[[T], R], items: Iterable[T], threads: int) -> Iterator[R]:
    """Apply ``work`` to every item on ``threads`` workers, yielding results in input order.

    When the consumer stops early (Ctrl-C, an error) the items not started are dropped and only
    those in flight finish, so an interrupted transfer stops within one file per thread.
    """
    pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="datamgmt-transfer")
    futures = [pool.submit(work, item) for item in items]
    try:
        for future in futures:
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
