"""Keys of catalogue rows, and how many of them go into one statement.

Set-based code passes keys to SQL as ``IN (…)`` lists or arrays (:func:`keys_in`), so every batch is cut
into chunks that keep a statement's bound parameters well under each
backend's limit (SQLite's is 32,766; a composite key binds one parameter per column).  The
three sizes below are the only ones in use, each named for why it is that size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    FromClause,
    Select,
    Table,
    and_,
    bindparam,
    false,
    func,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ClauseElement, operators
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import Grouping, UnaryExpression
from sqlalchemy.sql.visitors import InternalTraversal

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
    """Rows whose ``columns`` equal one of ``keys``.

    SQLite gets ``a = ? AND … AND wide IN (…)`` once per distinct value of the other columns
    (one scope, one RSE: usually a single group); ``wide`` is the position of the column with
    many values (the name; a request id), which goes into the ``IN`` list.  PostgreSQL gets a
    semi-join on arrays, ``(a, b) IN (SELECT unnest(?), unnest(?))``, one array per column.
    Both are cached statements with the keys as bound values.

    Why two forms: PostgreSQL (before 17) costs ``name IN (…)`` on an index's second column as
    one descent per value, so it prefers to scan every row of the scope (or of the RSE) and
    filter them by the list: each 5,000-key chunk of a bulk UPDATE then reads the whole scope,
    and a rule over 10^5 replicas took 20 such reads (``bench/rules.py``: 284 locks/s in place).
    A row comparison ``(scope, name) IN ((…), …)`` is no better: one OR-ed index scan per key,
    7.2 s for 5,000 keys (``bench/keys_in.py``).  The semi-join is planned as one index lookup
    per key whatever the statistics know of the scope, once the table outgrows the keys by far:
    PostgreSQL prices one probe as dearly as a scan of hundreds of rows, so with a chunk of 500
    keys it scanned and hash-joined a table of 20,000 to 50,000 DIDs (seen here; probes from
    about 100,000), and the scan grows with the table (:func:`probe_each_key` leaves it no
    choice).  Keys given as a subquery stay a row comparison: the database joins those
    itself."""
    if isinstance(keys, ClauseElement):
        return tuple_(*columns).in_(keys)
    keys = list(keys)
    if not keys:
        return false()
    if len(keys) == 1:
        # One DID (a metadata read, one file's replicas): plain equalities, which PostgreSQL
        # plans once for the prepared statement, where arrays are planned on every call.
        return and_(*(column == value for column, value in zip(columns, keys[0], strict=True)))
    return _KeysIn(list(columns), keys, wide)


class _KeysIn(ColumnElement[bool]):
    """:func:`keys_in` over literal keys, rendered per dialect (see there).

    It holds both forms, so that a statement built on it is cached like any other: the cache
    key is both forms' structure, and the keys are their bound values."""

    type = Boolean()
    inherit_cache = True
    _traverse_internals = [
        ("grouped", InternalTraversal.dp_clauseelement),
        ("joined", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, columns: list[Any], keys: list[Sequence[Any]], wide: int):
        self.grouped = _grouped(columns, keys, wide)
        self.joined = _joined(columns, keys)

    def self_group(self, against: Any = None) -> ColumnElement[Any]:
        # Parenthesised, never ``= 1``: what it renders to is already a condition.
        return Grouping(self)

    def _negate(self) -> ColumnElement[Any]:
        return UnaryExpression(Grouping(self), operator=operators.inv)


def _grouped(columns: list[Any], keys: list[Sequence[Any]], wide: int) -> ColumnElement[bool]:
    """``a = ? AND … AND wide IN (…)``, once per distinct value of the narrow columns.

    Built for every chunk of every bulk call, so it stays cheap: a C-level ``itemgetter`` picks
    the narrow values and the wide ones go in as one expanding parameter, which SQLAlchemy
    does not coerce value by value (500 keys: 0.56 ms before, 0.08 ms after)."""
    positions = [i for i in range(len(columns)) if i != wide]
    narrow_of = _narrow_values(positions)
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for key in keys:
        groups[narrow_of(key)].append(key[wide])
    narrow = [columns[i] for i in positions]
    many_type = columns[wide].type
    return or_(
        *(
            and_(
                *(column == value for column, value in zip(narrow, values, strict=True)),
                columns[wide].in_(bindparam(None, many, expanding=True, type_=many_type)),
            )
            for values, many in groups.items()
        )
    )


def _narrow_values(positions: list[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A key's values at ``positions``, always as a tuple (``itemgetter`` of one is not)."""
    if len(positions) > 1:
        return itemgetter(*positions)
    if positions:
        (only,) = positions
        return lambda key: (key[only],)
    return lambda key: ()


def _joined(columns: list[Any], keys: list[Sequence[Any]]) -> ColumnElement[bool]:
    """``(a, b) IN (SELECT unnest(?), unnest(?))``, one array per column."""
    arrays = [
        bindparam(None, [key[i] for key in keys], type_=ARRAY(column.type))
        for i, column in enumerate(columns)
    ]
    return _semi_join(columns, arrays)


def probe_each_key(table: Table, names: Sequence[str]) -> tuple[FromClause, Any]:
    """PostgreSQL: the rows of ``table`` whose primary key equals one of the keys given at
    execution as arrays, one per key column under ``names``, each row found by its own probe of
    the key's index.  Returns the FROM clause and the row source whose columns to select.

    For a statement compiled once and run for every chunk of keys (attach).  The semi-join of
    :func:`keys_in` is planned by cost: PostgreSQL priced 500 index probes above one scan of a
    table of 50,000 DIDs and hash-joined the keys against every row, which took 6.7 ms of a
    500-key chunk there, growing with the table, against 1.5 ms for the probes.
    ``JOIN LATERAL (… LIMIT 1)`` leaves the planner one plan, the probe per key."""
    key = list(table.primary_key.columns)
    arrays = [bindparam(name, type_=ARRAY(column.type)) for name, column in zip(names, key, strict=True)]
    wanted = func.unnest(*arrays).table_valued(*(column.name for column in key)).render_derived(name="wanted")
    row = select(table).where(*(column == wanted.c[column.name] for column in key)).limit(1).lateral("probed")
    return wanted.join(row, true()), row


def _semi_join(columns: list[Any], arrays: list[Any]) -> ColumnElement[bool]:
    return tuple_(*columns).in_(select(*(func.unnest(array) for array in arrays)))


@compiles(_KeysIn)
def _compile_grouped(element: _KeysIn, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.grouped, **kw)


@compiles(_KeysIn, "postgresql")
def _compile_joined(element: _KeysIn, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.joined, **kw)
