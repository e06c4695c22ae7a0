"""Keys of catalogue rows, and how many of them go into one statement.

Set-based code passes keys to SQL as ``IN (…)`` lists (:func:`keys_in`), so every batch is cut
into chunks that keep a statement's bound parameters well under each
backend's limit (SQLite's is 32,766; a composite key binds one parameter per column).  The
three sizes below are the only ones in use, each named for why it is that size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, or_, tuple_
from sqlalchemy.sql import ClauseElement

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


def keys_in(
    columns: Sequence[Any], keys: Iterable[Sequence[Any]] | Select[Any], wide: int = 1
) -> ColumnElement[bool]:
    """Rows whose ``columns`` equal one of ``keys``, written as ``a = ? AND … AND wide IN (…)``
    once per distinct value of the other columns (one scope, one RSE: usually a single group).

    Why not a row comparison ``(scope, name) IN ((…), …)``: PostgreSQL plans one of N keys as N
    OR-ed index scans.  An UPDATE over 5,000 keys took 7.2 s that way, and 0.18 s as ``scope = ?
    AND name IN (…)`` (``bench/keys_in.py``, 10^5 replicas).  ``wide`` is the position of the
    column with many values (the name; a request id), which goes into the ``IN`` list.  Keys
    given as a subquery stay a row comparison: the database joins those itself."""
    if isinstance(keys, ClauseElement):
        return tuple_(*columns).in_(keys)
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for key in keys:
        groups[tuple(value for i, value in enumerate(key) if i != wide)].append(key[wide])
    if not groups:
        return false()
    narrow = [column for i, column in enumerate(columns) if i != wide]
    return or_(
        *(
            and_(
                *(column == value for column, value in zip(narrow, values, strict=True)),
                columns[wide].in_(many),
            )
            for values, many in groups.items()
        )
    )
