"""A storage endpoint that fails a share of put, stat and delete calls, like an overloaded site.

:class:`FaultyProtocol` wraps any protocol: the three operations fail (before touching storage)
with probability ``rate``; everything else passes through.  Deleting an upload's temporary
(the clean-up after a failed upload) is never failed: a temporary left behind has no catalogue
row to protect, so it would only test the clean-up, not the catalogue.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from datamgmt.exceptions import StorageError
from datamgmt.rse.protocols import Protocol, StatResult, create_protocol
from datamgmt.rse.upload import TEMPORARY_MARKER


class Injector:
    """The shared dice and tally of every FaultyProtocol of one run."""

    def __init__(self, rate: float, seed: int) -> None:
        self.rate = rate
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        #: PFNs whose deletion was refused, in order.
        self.refused_deletes: list[str] = []

    def roll(self, operation: str, pfn: str) -> None:
        with self._lock:
            if self._rng.random() >= self.rate:
                return
            self.injected[operation] += 1
            if operation == "delete":
                self.refused_deletes.append(pfn)
        raise StorageError(f"injected {operation} failure on {pfn}")

    def factory(self) -> Callable[[Mapping[str, Any]], Protocol]:
        return lambda record: FaultyProtocol(create_protocol(record), self)  # type: ignore[return-value]


class FaultyProtocol:
    def __init__(self, inner: Protocol, injector: Injector) -> None:
        self.inner, self.injector = inner, injector

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put(self, local_path: str, pfn: str, progress_callback: Any = None) -> None:
        self.injector.roll("put", pfn)
        self.inner.put(local_path, pfn, progress_callback)

    def stat(self, pfn: str) -> StatResult:
        self.injector.roll("stat", pfn)
        return self.inner.stat(pfn)

    def delete(self, pfn: str) -> None:
        if TEMPORARY_MARKER not in pfn:
            self.injector.roll("delete", pfn)
        self.inner.delete(pfn)
