"""Keys of catalogue rows, and how many of them go into one statement.

Set-based code passes keys to SQL as ``IN (…)`` lists (``tuple_(scope, name).in_(part)``), so
every batch is cut into chunks that keep a statement's bound parameters well under each
backend's limit (SQLite's is 32,766; a composite key binds one parameter per column).  The
three sizes below are the only ones in use, each named for why it is that size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

#: A DID: (scope, name).
DIDKey = tuple[str, str]
#: A replica: (scope, name, rse_id).
ReplicaKey = tuple[str, str, str]

#: Keys per ``IN (…)`` list in lookups and bulk updates: at three columns a key, still well
#: under SQLite's bound-parameter limit.
CHUNK = 5000
#: Keys per statement over a daemon's queue batch (leases, routing, in-flight requests): the
#: submitter's and finisher's default batch, so one statement usually covers a whole batch.
QUEUE_CHUNK = 500
#: Keys per statement that also carries a per-row ``CASE id WHEN … THEN …``: two parameters a
#: key, and a CASE that the database evaluates branch by branch for every row it updates.
CASE_CHUNK = 500


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
