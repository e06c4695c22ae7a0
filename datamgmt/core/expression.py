"""RSE expressions: the language that rules, quotas, subscriptions and the reaper select storage with.

Every expression Rucio accepts means here exactly what it means in Rucio
(``docs/rse_expressions.md``): primitives are bare words (``X`` is ``X=true``),
``key=value``, ``key<n``, ``key>n`` and ``*``; ``|``, ``&`` and ``\\`` fold strictly
left to right, parentheses group.  We add ``<=``, ``>=``, ``!=``, decimal values and a
computed ``freespace`` attribute, none of which a valid Rucio expression can contain.

An expression is parsed once by a pyparsing grammar into a small tree, then evaluated
with set algebra over a snapshot of the RSEs and their attributes, indexed by key and value.
Results are cached in a dogpile region under a key that includes a *generation* token
stored in the same backend; every committed RSE change replaces the token, so all
processes sharing the backend stop seeing older results at once.  Each process loads the
snapshot once per generation (two queries), so a cache miss usually costs no query either.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import math
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyparsing as pp
from dogpile.cache import CacheRegion
from dogpile.cache.api import NO_VALUE
from sqlalchemy import select
from sqlalchemy.orm import Session

from datamgmt.core import validation
from datamgmt.core.cache import Generation, RegionGeneration, make_generation, make_region
from datamgmt.core.db.models import RSE, RSEAttribute, RSELimit, RSEUsage
from datamgmt.core.db.session import catalogue_of
from datamgmt.core.rse import RSE_CHANGE_LISTENERS, has_uncommitted_changes
from datamgmt.exceptions import InvalidRSEExpression, RSEWriteBlocked

__all__ = [
    "Snapshot",
    "held_snapshot",
    "invalidate_cache",
    "parse_expression",
    "rse_ids_for",
    "rse_names_for",
    "set_cache_region",
]

TB = 10**12
FREESPACE = "freespace"
MIN_FREE_SPACE = "MinFreeSpace"
_SHOWN = 20  # characters of the expression quoted around an error position
#: Caps on one expression, checked before it is parsed: its tree (and the recursion that parses
#: and evaluates it) stays far below Python's recursion limit, and the parse cache below holds at
#: most ``_PARSE_CACHE_ENTRIES * MAX_EXPRESSION_LENGTH`` characters (16 MiB), whatever callers send.
MAX_EXPRESSION_LENGTH = 2048
MAX_EXPRESSION_DEPTH = 32
MAX_EXPRESSION_OPERATORS = 256
_PARSE_CACHE_ENTRIES = 8192


# --- the tree --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Everything:
    """``*``: every RSE that is not deleted."""


@dataclass(frozen=True)
class Compare:
    """``key op value``; a bare word ``X`` is ``Compare('X', '=', 'true')``."""

    key: str
    op: str
    value: str


@dataclass(frozen=True)
class Combine:
    """``left op right`` with op one of ``|`` (union), ``&`` (intersection), ``\\`` (difference)."""

    op: str
    left: Node
    right: Node


Node = Everything | Compare | Combine


def keys_of(node: Node) -> set[str]:
    """The attribute keys a tree reads, so the snapshot loads only those."""
    if isinstance(node, Compare):
        return {node.key}
    if isinstance(node, Combine):
        return keys_of(node.left) | keys_of(node.right)
    return set()


# --- the grammar -----------------------------------------------------------------------------
def _grammar() -> pp.ParserElement:
    """Rucio's regular grammar as a recursive one, extended with <=, >=, != and decimals.

    Rucio's keys are ``[A-Za-z0-9._-]+`` and values ``[A-Za-z0-9_-]+``; we also accept ':'
    in both (attribute keys may hold it) and '.' in values (decimals).  Bare words stay
    exactly Rucio's ``[A-Za-z0-9]+([_-][A-Za-z0-9]+)*``.
    """
    comparison = pp.Regex(
        r"(?P<key>[A-Za-z0-9._:-]+)(?P<op><=|>=|!=|=|<|>)(?P<value>[A-Za-z0-9._:-]+)"
    ).set_parse_action(lambda t: Compare(t["key"], t["op"], t["value"]))
    bare = pp.Regex(r"[A-Za-z0-9]+(?:[_-][A-Za-z0-9]+)*").set_parse_action(
        lambda t: Compare(t[0], "=", "true")
    )
    everything = pp.Literal("*").set_parse_action(lambda: Everything())
    expression = pp.Forward()
    operand = comparison | bare | everything | pp.Suppress("(") - expression - pp.Suppress(")")
    expression <<= (operand + pp.ZeroOrMore(pp.Char("|&\\") - operand)).set_parse_action(_fold)
    return expression.leave_whitespace()


def _fold(tokens: pp.ParseResults) -> Node:
    """Fold ``a op b op c`` strictly left to right: ``(a op b) op c``, as Rucio does."""
    items = list(tokens)
    node: Node = items[0]
    for op, right in zip(items[1::2], items[2::2], strict=True):
        node = Combine(op, node, right)
    return node


_GRAMMAR = _grammar()
_GRAMMAR_LOCK = threading.Lock()


def _near(expression: str, position: int) -> str:
    return repr(
        expression[position : position + _SHOWN] + ("..." if len(expression) > position + _SHOWN else "")
    )


def _check_size(expression: str) -> None:
    """Refuse an expression longer, more nested or with more operators than the caps allow."""
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise InvalidRSEExpression(
            f"Expression is too long: {len(expression)} characters, at most {MAX_EXPRESSION_LENGTH}"
        )
    operators = sum(expression.count(op) for op in "|&\\")
    if operators > MAX_EXPRESSION_OPERATORS:
        raise InvalidRSEExpression(
            f"Expression has too many operators: {operators}, at most {MAX_EXPRESSION_OPERATORS}"
        )


def _check_parentheses(expression: str) -> None:
    opened: list[int] = []
    for position, char in enumerate(expression):
        if char == "(":
            opened.append(position)
            if len(opened) > MAX_EXPRESSION_DEPTH:
                raise InvalidRSEExpression(
                    f"Expression is nested too deeply: more than {MAX_EXPRESSION_DEPTH} parentheses "
                    f"at position {position}"
                )
        elif char == ")":
            if not opened:
                raise InvalidRSEExpression(
                    f"Problem with parentheses: ')' at position {position} closes nothing (near {_near(expression, position)})"
                )
            opened.pop()
    if opened:
        position = opened[-1]
        raise InvalidRSEExpression(
            f"Problem with parentheses: '(' at position {position} is never closed (near {_near(expression, position)})"
        )


@functools.lru_cache(maxsize=_PARSE_CACHE_ENTRIES)  # beyond the distinct expressions of a busy deployment
def parse_tree(expression: str) -> Node:
    """The tree of an expression, or InvalidRSEExpression naming what is wrong and where."""
    if not isinstance(expression, str) or not expression:
        raise InvalidRSEExpression(
            "Expression does not comply to RSE Expression syntax: the expression is empty"
        )
    _check_size(expression)
    _check_parentheses(expression)
    blank = next((position for position, char in enumerate(expression) if char.isspace()), None)
    if blank is not None:
        raise InvalidRSEExpression(
            f"Expression does not comply to RSE Expression syntax: whitespace at position {blank}"
        )
    try:
        with _GRAMMAR_LOCK:  # pyparsing elements keep per-parse state
            tree: Node = _GRAMMAR.parse_string(expression, parse_all=True)[0]
            return tree
    except RecursionError:
        raise InvalidRSEExpression("Expression is nested too deeply") from None
    except pp.ParseBaseException as exc:
        position = min(exc.loc, len(expression))
        found = (
            f"unexpected {_near(expression, position)}" if position < len(expression) else "unexpected end"
        )
        raise InvalidRSEExpression(
            f"Expression does not comply to RSE Expression syntax: {found} at position {position}"
        ) from None


# --- the snapshot ----------------------------------------------------------------------------
_COLUMNS = (
    RSE.id,
    RSE.rse,
    RSE.rse_type,
    RSE.deterministic,
    RSE.volatile,
    RSE.staging_area,
    RSE.availability_read,
    RSE.availability_write,
    RSE.availability_delete,
    RSE.created_at,  # not compared by expressions: shown by GET /rses/{rse} (core/rse_access.py)
    RSE.updated_at,
)
_BOOLEAN_COLUMNS = frozenset(
    {
        "deterministic",
        "volatile",
        "staging_area",
        "availability_read",
        "availability_write",
        "availability_delete",
    }
)
#: Keys compared with the RSE's own column instead of an attribute, as Rucio's list_rses does.
COLUMN_KEYS = _BOOLEAN_COLUMNS | {"rse", "rse_type", "availability"}
_BOOLEAN_WORDS = {"true": True, "1": True, "false": False, "0": False}
_NO_RSES: frozenset[str] = frozenset()


def availability(row: Any) -> int:
    """Rucio's legacy bitmask: read=4, write=2, delete=1."""
    return int(4 * row.availability_read + 2 * row.availability_write + row.availability_delete)


def rse_record(row: Any) -> dict[str, Any]:
    """An RSE as parse_expression returns it: its columns, the type by name, and the bitmask."""
    record = dict(row._mapping)
    record["rse_type"] = row.rse_type.name
    record["availability"] = availability(row)
    return record


def as_number(value: str | float) -> float | None:
    """An attribute value as a number, Rucio's way: booleans count 1 and 0, text is skipped."""
    if isinstance(value, float):
        return value
    lowered = value.lower()
    if lowered in ("true", "false"):
        return float(lowered == "true")
    try:
        return float(value)
    except ValueError:
        return None


def _group(pairs: Iterable[tuple[Any, str]]) -> dict[Any, frozenset[str]]:
    groups: dict[Any, set[str]] = {}
    for value, rse_id in pairs:
        groups.setdefault(value, set()).add(rse_id)
    return {value: frozenset(ids) for value, ids in groups.items()}


class AttributeIndex:
    """One attribute key's values, indexed so that every comparison is a lookup or a bisection.

    Stored strings compare exactly, except ``true``/``false`` which compare without case;
    computed floats (``freespace``) compare as numbers.  ``numbers``/``ordered_ids`` hold every
    value that reads as a number (NaN excluded: it compares false), in ascending order.
    """

    def __init__(self, values: dict[str, str | float]) -> None:
        texts = [(stored, rse_id) for rse_id, stored in values.items() if isinstance(stored, str)]
        self.exact = _group(texts)
        self.booleans = _group(
            (stored.lower(), rse_id) for stored, rse_id in texts if stored.lower() in ("true", "false")
        )
        self.floats = _group(
            (stored, rse_id) for rse_id, stored in values.items() if isinstance(stored, float)
        )
        numeric = sorted(
            (number, rse_id)
            for rse_id, stored in values.items()
            if (number := as_number(stored)) is not None and not math.isnan(number)
        )
        self.numbers = [number for number, _ in numeric]
        self.ordered_ids = [rse_id for _, rse_id in numeric]

    def equal(self, value: str) -> frozenset[str]:
        lowered = value.lower()
        texts = self.booleans.get(lowered) if lowered in ("true", "false") else self.exact.get(value)
        number = as_number(value) if self.floats else None
        floats = self.floats.get(number) if number is not None else None
        if floats is None:
            return texts or _NO_RSES
        return floats | texts if texts else floats

    def compare(self, op: str, bound: float) -> frozenset[str]:
        if op == "<":
            return frozenset(self.ordered_ids[: bisect.bisect_left(self.numbers, bound)])
        if op == "<=":
            return frozenset(self.ordered_ids[: bisect.bisect_right(self.numbers, bound)])
        if op == ">":
            return frozenset(self.ordered_ids[bisect.bisect_right(self.numbers, bound) :])
        return frozenset(self.ordered_ids[bisect.bisect_left(self.numbers, bound) :])


#: Expressions a snapshot remembers the answers of, at most (a process meets a few dozen).
REMEMBERED_EXPRESSIONS = 4096


class Snapshot:
    """The non-deleted RSEs (records by id) and their attribute values, with indexes over them.

    The per-generation snapshot a process keeps holds every attribute; its indexes are built
    the first time a key is compared, and computed ``freespace`` is added the first time an
    expression names it (:meth:`add_free_space`), so expressions that never use it cost
    nothing for it.  Records are shared by every call of the generation: never mutate them.
    """

    def __init__(
        self, rses: dict[str, dict[str, Any]], attributes: dict[str, dict[str, str | float]]
    ) -> None:
        self.rses = rses
        #: key -> rse_id -> value: the stored string, or a float for computed ``freespace``.
        self.attributes = attributes
        self.everything = frozenset(rses)
        self.has_free_space = False
        self._rank = {rse_id: rank for rank, rse_id in enumerate(sorted(rses, key=lambda i: rses[i]["rse"]))}
        self._indexes: dict[str, AttributeIndex] = {}
        self._columns: dict[str, dict[Any, frozenset[str]]] = {}
        self._ids_by_name: dict[str, str] | None = None
        self._by_rse: dict[str, dict[str, str]] | None = None
        #: What this process resolved through this snapshot: ids, and names once listed (a
        #: repeated expression skips the cache, the presence check and 333 name lookups).
        self.resolved: dict[str, tuple[str, ...]] = {}
        self._names: dict[str, tuple[str, ...]] = {}

    def add_free_space(self, free_tb: dict[str, float]) -> None:
        """Computed free space for the RSEs that have no stored ``freespace`` attribute."""
        merged: dict[str, str | float] = {rse_id: tb for rse_id, tb in free_tb.items() if rse_id in self.rses}
        merged.update(self.attributes.get(FREESPACE, {}))
        self.attributes = {**self.attributes, FREESPACE: merged}
        self._indexes.pop(FREESPACE, None)
        self.has_free_space = True

    def attribute(self, key: str) -> AttributeIndex:
        index = self._indexes.get(key)
        if index is None:
            index = self._indexes[key] = AttributeIndex(self.attributes.get(key, {}))
        return index

    def column(self, key: str) -> dict[Any, frozenset[str]]:
        """A column's RSEs by value (booleans as bool), for equality on column keys."""
        groups = self._columns.get(key)
        if groups is None:
            convert = bool if key in _BOOLEAN_COLUMNS else (lambda value: value)
            groups = _group((convert(record[key]), rse_id) for rse_id, record in self.rses.items())
            self._columns[key] = groups
        return groups

    def attributes_of(self, rse_id: str) -> dict[str, str]:
        """The stored attribute values of one RSE by key (computed free space aside), indexed
        for every RSE on first use: one pass over the attributes, not one per RSE."""
        if self._by_rse is None:
            by_rse: dict[str, dict[str, str]] = {}
            for key, values in self.attributes.items():
                for owner, value in values.items():
                    if isinstance(value, str):
                        by_rse.setdefault(owner, {})[key] = value
            self._by_rse = by_rse
        return self._by_rse.get(rse_id, {})

    def record_named(self, name: str) -> dict[str, Any] | None:
        """The record of the RSE called ``name``, or None."""
        if self._ids_by_name is None:
            self._ids_by_name = {record["rse"]: rse_id for rse_id, record in self.rses.items()}
        rse_id = self._ids_by_name.get(name)
        return None if rse_id is None else self.rses[rse_id]

    def holds(self, ids: tuple[str, ...]) -> bool:
        return self.everything.issuperset(ids)

    def names(self, expression: str, ids: tuple[str, ...]) -> tuple[str, ...]:
        """The names of ``ids``, which ``expression`` selected: looked up once per expression."""
        names = self._names.get(expression)
        if names is None:
            names = tuple(self.rses[rse_id]["rse"] for rse_id in ids)
            if len(self._names) < REMEMBERED_EXPRESSIONS:
                self._names[expression] = names
        return names

    def select(self, tree: Node) -> tuple[str, ...]:
        """The ids of the RSEs a tree selects, sorted by RSE name (interned: cached results share them)."""
        return tuple(
            sys.intern(rse_id) for rse_id in sorted(evaluate(tree, self), key=self._rank.__getitem__)
        )


def load_snapshot(session: Session, keys: set[str] | None = None) -> Snapshot:
    """The non-deleted RSEs and their attributes: all of them (two queries), or only those
    with these keys, with ``freespace`` computed (two more queries) if the keys name it."""
    rses = {
        row.id: rse_record(row) for row in session.execute(select(*_COLUMNS).where(RSE.deleted.is_(False)))
    }
    query = select(RSEAttribute.key, RSEAttribute.rse_id, RSEAttribute.value)
    wanted = None if keys is None else keys - COLUMN_KEYS
    attributes: dict[str, dict[str, str | float]] = {}
    if wanted is None or wanted:
        if wanted is not None:
            query = query.where(RSEAttribute.key.in_(wanted))
        for key, rse_id, value in session.execute(query):
            if rse_id in rses and key not in COLUMN_KEYS:
                attributes.setdefault(key, {})[rse_id] = value
    snapshot = Snapshot(rses, attributes)
    if keys is not None and FREESPACE in keys:
        snapshot.add_free_space(free_space_tb(session))
    return snapshot


def free_space_tb(session: Session) -> dict[str, float]:
    """Free space in TB per RSE: the usage of source ``storage`` if it reports free space,
    else of another source that does, less the RSE's ``MinFreeSpace`` limit."""
    free: dict[str, int] = {}
    usage = session.execute(
        select(RSEUsage.rse_id, RSEUsage.source, RSEUsage.free)
        .where(RSEUsage.free.is_not(None))
        .order_by(RSEUsage.rse_id, RSEUsage.source)
    )
    for rse_id, source, value in usage:
        if source == "storage" or rse_id not in free:
            free[rse_id] = value
    minimum = dict(
        session.execute(select(RSELimit.rse_id, RSELimit.value).where(RSELimit.name == MIN_FREE_SPACE))
        .tuples()
        .all()
    )
    return {rse_id: (value - minimum.get(rse_id, 0)) / TB for rse_id, value in free.items()}


# --- evaluation ------------------------------------------------------------------------------
def _column_value(key: str, value: str) -> Any:
    """The column value ``key=value`` selects, or None when no RSE can have it."""
    if key in _BOOLEAN_COLUMNS:
        return _BOOLEAN_WORDS.get(value.lower())
    if key == "rse_type":
        return value.upper()
    if key == "availability":
        return int(value) if value.isdigit() else None
    return value


def _equal(term: Compare, snapshot: Snapshot) -> frozenset[str]:
    if term.key in COLUMN_KEYS:
        wanted = _column_value(term.key, term.value)
        return _NO_RSES if wanted is None else snapshot.column(term.key).get(wanted, _NO_RSES)
    return snapshot.attribute(term.key).equal(term.value)


def _compare(term: Compare, snapshot: Snapshot) -> frozenset[str]:
    if term.op == "=":
        return _equal(term, snapshot)
    if term.op == "!=":
        return snapshot.everything - _equal(term, snapshot)
    # Like Rucio, numeric comparisons read attributes only, never columns.
    bound = as_number(term.value)
    if bound is None or math.isnan(bound) or term.key in COLUMN_KEYS:
        return _NO_RSES
    return snapshot.attribute(term.key).compare(term.op, bound)


def evaluate(node: Node, snapshot: Snapshot) -> frozenset[str]:
    """The ids of the RSEs a tree selects in a snapshot."""
    if isinstance(node, Everything):
        return snapshot.everything
    if isinstance(node, Compare):
        return _compare(node, snapshot)
    left, right = evaluate(node.left, snapshot), evaluate(node.right, snapshot)
    if node.op == "|":
        return left | right
    if node.op == "&":
        return left & right
    return left - right


# --- the cache -------------------------------------------------------------------------------
class ExpressionCache:
    """Results by expression, valid for one generation of the RSE catalogue.

    The generation token (:func:`~datamgmt.core.cache.make_generation`: in the shared backend
    with the results, or in a file of the host with the per-process memory backend) is part
    of every key; invalidation writes a fresh random token, which needs no atomic increment
    and never collides with an older one.  A lost token (eviction) only means a fresh one.

    A result is stored as the ids of the selected RSEs, sorted by name.  Each process also
    keeps one :class:`Snapshot` of the catalogue for the current generation: a miss is then
    evaluated in memory, and hits are answered with its records, without a query.
    """

    def __init__(self, region: CacheRegion, generation: Generation | None = None) -> None:
        self.region = region
        self._generation = generation or RegionGeneration(region)
        #: Per catalogue (one per VO, core/vo.py): the generation and snapshot this process holds.
        self._snapshots: dict[str, tuple[str, Snapshot]] = {}

    def generation(self) -> str:
        return self._generation.current()

    @staticmethod
    def key(catalogue: str, generation: str, expression: str) -> str:
        return f"{catalogue}:{generation}:{hashlib.sha256(expression.encode()).hexdigest()}"

    def get(self, catalogue: str, generation: str, expression: str) -> tuple[str, ...] | None:
        value = self.region.get(self.key(catalogue, generation, expression))
        return None if value is NO_VALUE else value

    def set(self, catalogue: str, generation: str, expression: str, ids: tuple[str, ...]) -> None:
        self.region.set(self.key(catalogue, generation, expression), ids)

    def snapshot(self, session: Session, generation: str) -> Snapshot:
        """This generation's snapshot of the session's catalogue, loaded through ``session``
        unless this process holds it."""
        catalogue = catalogue_of(session)
        held = self._snapshots.get(catalogue)
        if held is not None and held[0] == generation:
            return held[1]
        snapshot = load_snapshot(session)
        self._snapshots[catalogue] = (generation, snapshot)
        return snapshot

    def invalidate(self) -> None:
        self._generation.renew()


_cache_lock = threading.Lock()
_cache: ExpressionCache | None = None


def current_cache() -> ExpressionCache:
    """The process's cache, built from ``[cache]`` on first use."""
    global _cache
    with _cache_lock:
        if _cache is None:
            region = make_region("rse_expression")
            _cache = ExpressionCache(region, make_generation("rse_expression", region))
        return _cache


def set_cache_region(region: CacheRegion | None) -> None:
    """Use this region for expression results (None: rebuild from the configuration on next use)."""
    global _cache
    with _cache_lock:
        _cache = None if region is None else ExpressionCache(region)


def invalidate_cache() -> None:
    """Forget every cached result, in every process that shares the cache backend."""
    current_cache().invalidate()


if invalidate_cache not in RSE_CHANGE_LISTENERS:
    RSE_CHANGE_LISTENERS.append(invalidate_cache)


# --- the public entry points -----------------------------------------------------------------
def _resolve(session: Session, expression: str) -> tuple[Snapshot, tuple[str, ...]]:
    """The ids of all RSEs an expression selects, sorted by name (possibly none), and the
    snapshot that holds their records.  Cached, except while the session holds uncommitted
    RSE changes that other sessions cannot see."""
    tree = parse_tree(expression)
    if has_uncommitted_changes(session):
        snapshot = load_snapshot(session, keys_of(tree))
        return snapshot, snapshot.select(tree)
    cache = current_cache()
    generation = cache.generation()  # read before the snapshot, so a change after it is never missed
    snapshot = cache.snapshot(session, generation)
    known = snapshot.resolved.get(expression)
    if known is not None:
        return snapshot, known
    catalogue = catalogue_of(session)
    ids = cache.get(catalogue, generation, expression)
    # Ids naming an RSE this snapshot lacks were cached by another process just before it
    # was deleted: the snapshot answers instead.
    if ids is None or not snapshot.holds(ids):
        if not snapshot.has_free_space and FREESPACE in keys_of(tree):
            snapshot.add_free_space(free_space_tb(session))
        ids = snapshot.select(tree)
        cache.set(catalogue, generation, expression, ids)
    if len(snapshot.resolved) < REMEMBERED_EXPRESSIONS:
        snapshot.resolved[expression] = ids
    return snapshot, ids


def held_snapshot(session: Session) -> Snapshot | None:
    """This generation's snapshot of the session's catalogue (no query when this process holds
    it), or None while the session holds uncommitted RSE changes that the snapshot lacks."""
    if has_uncommitted_changes(session):
        return None
    cache = current_cache()
    return cache.snapshot(session, cache.generation())


def parse_expression(
    session: Session, expression: str, *, for_write: bool = False, ignore_availability: bool = False
) -> list[dict[str, Any]]:
    """The RSEs an expression selects, as dicts sorted by RSE name (the caller's own copies).

    Raises InvalidRSEExpression for bad syntax, unbalanced parentheses or an empty result.
    With ``for_write``, RSEs blocked for writing are dropped, and RSEWriteBlocked is raised
    if that leaves none, unless ``ignore_availability``.
    """
    snapshot, ids = _resolve(session, expression)
    _check_not_empty(expression, ids)
    records = snapshot.rses
    if for_write and not ignore_availability:
        writable = tuple(rse_id for rse_id in ids if records[rse_id]["availability_write"])
        if not writable:
            raise RSEWriteBlocked(
                f"RSE excluded due to write blacklisting: all {len(ids)} RSEs of "
                f"{validation.shown(expression)} are blocked for writing"
            )
        ids = writable
    return list(map(dict, map(records.__getitem__, ids)))


def rse_names_for(session: Session, expression: str) -> tuple[str, ...]:
    """The names of the RSEs an expression selects, sorted (same errors as
    :func:`parse_expression`): the listing's answer, without copying any record."""
    snapshot, ids = _resolve(session, expression)
    _check_not_empty(expression, ids)
    return snapshot.names(expression, ids)


def rse_ids_for(session: Session, expression: str) -> set[str]:
    """The ids of the RSEs an expression selects (same errors as :func:`parse_expression`),
    without copying their records."""
    ids = _resolve(session, expression)[1]
    _check_not_empty(expression, ids)
    return set(ids)


def _check_not_empty(expression: str, ids: tuple[str, ...]) -> None:
    if not ids:
        raise InvalidRSEExpression(f"RSE Expression resulted in an empty set: {validation.shown(expression)}")
