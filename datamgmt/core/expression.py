"""RSE expressions: the language that rules, quotas, subscriptions and the reaper select storage with.

Every expression Rucio accepts means here exactly what it means in Rucio
(``docs/rse_expressions.md``): primitives are bare words (``X`` is ``X=true``),
``key=value``, ``key<n``, ``key>n`` and ``*``; ``|``, ``&`` and ``\\`` fold strictly
left to right, parentheses group.  We add ``<=``, ``>=``, ``!=``, decimal values and a
computed ``freespace`` attribute, none of which a valid Rucio expression can contain.

An expression is parsed once by a pyparsing grammar into a small tree, then evaluated
against one snapshot of the RSEs and of the attributes it names (two queries, not one per
term).  Results are cached in a dogpile region under a key that includes a *generation*
token stored in the same backend; every committed RSE change replaces the token, so all
processes sharing the backend stop seeing older results at once.
"""

from __future__ import annotations

import functools
import hashlib
import math
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyparsing as pp
from dogpile.cache import CacheRegion
from dogpile.cache.api import NO_VALUE
from sqlalchemy import select
from sqlalchemy.orm import Session

from datamgmt.core import validation
from datamgmt.core.cache import make_region
from datamgmt.core.db.models import RSE, RSEAttribute, RSELimit, RSEUsage
from datamgmt.core.rse import _PENDING_KEY as _RSE_CHANGES_PENDING
from datamgmt.core.rse import RSE_CHANGE_LISTENERS
from datamgmt.exceptions import InvalidRSEExpression, RSEWriteBlocked

__all__ = ["invalidate_cache", "parse_expression", "rse_ids_for", "set_cache_region"]

TB = 10**12
FREESPACE = "freespace"
MIN_FREE_SPACE = "MinFreeSpace"
_SHOWN = 20  # characters of the expression quoted around an error position


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
    node = items[0]
    for op, right in zip(items[1::2], items[2::2], strict=True):
        node = Combine(op, node, right)
    return node


_GRAMMAR = _grammar()
_GRAMMAR_LOCK = threading.Lock()


def _near(expression: str, position: int) -> str:
    return repr(
        expression[position : position + _SHOWN] + ("..." if len(expression) > position + _SHOWN else "")
    )


def _check_parentheses(expression: str) -> None:
    opened: list[int] = []
    for position, char in enumerate(expression):
        if char == "(":
            opened.append(position)
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


@functools.lru_cache(maxsize=4096)
def parse_tree(expression: str) -> Node:
    """The tree of an expression, or InvalidRSEExpression naming what is wrong and where."""
    if not isinstance(expression, str) or not expression:
        raise InvalidRSEExpression(
            "Expression does not comply to RSE Expression syntax: the expression is empty"
        )
    _check_parentheses(expression)
    blank = next((position for position, char in enumerate(expression) if char.isspace()), None)
    if blank is not None:
        raise InvalidRSEExpression(
            f"Expression does not comply to RSE Expression syntax: whitespace at position {blank}"
        )
    try:
        with _GRAMMAR_LOCK:  # pyparsing elements keep per-parse state
            return _GRAMMAR.parse_string(expression, parse_all=True)[0]
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


def availability(row: Any) -> int:
    """Rucio's legacy bitmask: read=4, write=2, delete=1."""
    return 4 * row.availability_read + 2 * row.availability_write + row.availability_delete


def rse_record(row: Any) -> dict[str, Any]:
    """An RSE as parse_expression returns it: its columns, the type by name, and the bitmask."""
    record = dict(row._mapping)
    record["rse_type"] = row.rse_type.name
    record["availability"] = availability(row)
    return record


@dataclass
class Snapshot:
    """The RSEs (rows by id) and the attribute values an expression reads."""

    rses: dict[str, Any]
    #: key -> rse_id -> value: the stored string, or a float for computed ``freespace``.
    attributes: dict[str, dict[str, str | float]]


def load_snapshot(session: Session, keys: set[str]) -> Snapshot:
    """The non-deleted RSEs and their attributes with these keys; ``freespace`` is computed
    (two more queries) only when the expression names it."""
    rses = {row.id: row for row in session.execute(select(*_COLUMNS).where(RSE.deleted.is_(False)))}
    attributes: dict[str, dict[str, str | float]] = {key: {} for key in keys}
    wanted = keys - COLUMN_KEYS
    if wanted:
        rows = session.execute(
            select(RSEAttribute.key, RSEAttribute.rse_id, RSEAttribute.value).where(
                RSEAttribute.key.in_(wanted)
            )
        )
        for key, rse_id, value in rows:
            if rse_id in rses:
                attributes[key][rse_id] = value
    if FREESPACE in keys:
        for rse_id, free in free_space_tb(session).items():
            attributes[FREESPACE].setdefault(rse_id, free)
    return Snapshot(rses, attributes)


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
        session.execute(select(RSELimit.rse_id, RSELimit.value).where(RSELimit.name == MIN_FREE_SPACE)).all()
    )
    return {rse_id: (value - minimum.get(rse_id, 0)) / TB for rse_id, value in free.items()}


# --- evaluation ------------------------------------------------------------------------------
_NUMERIC: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


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


def _column_matches(row: Any, key: str, value: str) -> bool:
    if key in _BOOLEAN_COLUMNS:
        wanted = {"true": True, "1": True, "false": False, "0": False}.get(value.lower())
        return wanted is not None and bool(getattr(row, key)) is wanted
    if key == "rse_type":
        return row.rse_type.name == value.upper()
    if key == "availability":
        return value.isdigit() and availability(row) == int(value)
    return row.rse == value


def _attribute_matches(stored: str | float, value: str) -> bool:
    if isinstance(stored, float):
        number = as_number(value)
        return number is not None and stored == number
    lowered = value.lower()
    if lowered in ("true", "false"):
        return stored.lower() == lowered
    return stored == value


def _equal(term: Compare, snapshot: Snapshot) -> set[str]:
    if term.key in COLUMN_KEYS:
        return {rse_id for rse_id, row in snapshot.rses.items() if _column_matches(row, term.key, term.value)}
    values = snapshot.attributes.get(term.key, {})
    return {rse_id for rse_id, stored in values.items() if _attribute_matches(stored, term.value)}


def _compare(term: Compare, snapshot: Snapshot) -> set[str]:
    if term.op == "=":
        return _equal(term, snapshot)
    if term.op == "!=":
        return snapshot.rses.keys() - _equal(term, snapshot)
    # Like Rucio, numeric comparisons read attributes only, never columns.
    bound = as_number(term.value)
    if bound is None or math.isnan(bound):
        return set()
    check = _NUMERIC[term.op]
    matched = set()
    for rse_id, stored in snapshot.attributes.get(term.key, {}).items():
        number = as_number(stored)
        if number is not None and check(number, bound):
            matched.add(rse_id)
    return matched


def evaluate(node: Node, snapshot: Snapshot) -> set[str]:
    """The ids of the RSEs a tree selects in a snapshot."""
    if isinstance(node, Everything):
        return set(snapshot.rses)
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

    The generation token lives in the same backend as the results and is part of every
    key; invalidation writes a fresh random token, which needs no atomic increment and
    never collides with an older one.  A lost token (eviction) only means a fresh one.

    A result is stored as the ids of the selected RSEs, sorted by name; the RSE records are
    kept once per process for the current generation, so a thousand cached expressions
    over the same RSEs do not hold a thousand copies of them.
    """

    GENERATION_KEY = "generation"

    def __init__(self, region: CacheRegion) -> None:
        self.region = region
        self._records: tuple[str, dict[str, dict[str, Any]]] = ("", {})

    def generation(self) -> str:
        token = self.region.get(self.GENERATION_KEY, ignore_expiration=True)
        if token is NO_VALUE:
            token = uuid.uuid4().hex
            self.region.set(self.GENERATION_KEY, token)
        return token

    @staticmethod
    def key(generation: str, expression: str) -> str:
        return f"{generation}:{hashlib.sha256(expression.encode()).hexdigest()}"

    def get(self, generation: str, expression: str) -> tuple[str, ...] | None:
        value = self.region.get(self.key(generation, expression))
        return None if value is NO_VALUE else value

    def set(self, generation: str, expression: str, ids: tuple[str, ...]) -> None:
        self.region.set(self.key(generation, expression), ids)

    def records(self, generation: str) -> dict[str, dict[str, Any]] | None:
        """The RSE records of this generation, if this process holds them."""
        held_generation, records = self._records
        return records if held_generation == generation else None

    def keep_records(self, generation: str, records: dict[str, dict[str, Any]]) -> None:
        self._records = (generation, records)

    def invalidate(self) -> None:
        self.region.set(self.GENERATION_KEY, uuid.uuid4().hex)


_cache_lock = threading.Lock()
_cache: ExpressionCache | None = None


def current_cache() -> ExpressionCache:
    """The process's cache, built from ``[cache]`` on first use."""
    global _cache
    with _cache_lock:
        if _cache is None:
            _cache = ExpressionCache(make_region("rse_expression"))
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
def _resolve(session: Session, expression: str) -> list[dict[str, Any]]:
    """All RSEs an expression selects, sorted by name; possibly empty.  Cached, except while
    the session holds uncommitted RSE changes that other sessions cannot see."""
    tree = parse_tree(expression)
    if session.info.get(_RSE_CHANGES_PENDING):
        return _select(load_snapshot(session, keys_of(tree)), tree)[1]
    cache = current_cache()
    generation = cache.generation()  # read before the snapshot, so a change after it is never missed
    ids = cache.get(generation, expression)
    if ids is not None:
        records = cache.records(generation)
        if records is None or not records.keys() >= set(ids):
            records = _all_records(session)
            cache.keep_records(generation, records)
        if records.keys() >= set(ids):
            return [records[rse_id] for rse_id in ids]
    # A miss, or ids cached by another process just before an RSE of them was deleted.
    snapshot = load_snapshot(session, keys_of(tree))
    if cache.records(generation) is None:
        cache.keep_records(generation, {rse_id: rse_record(row) for rse_id, row in snapshot.rses.items()})
    ids, result = _select(snapshot, tree)
    cache.set(generation, expression, ids)
    return result


def _all_records(session: Session) -> dict[str, dict[str, Any]]:
    return {
        row.id: rse_record(row) for row in session.execute(select(*_COLUMNS).where(RSE.deleted.is_(False)))
    }


def _select(snapshot: Snapshot, tree: Node) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    """The selected RSEs' ids (interned: cached results share them) and records, sorted by name."""
    rows = sorted((snapshot.rses[rse_id] for rse_id in evaluate(tree, snapshot)), key=lambda row: row.rse)
    return tuple(sys.intern(row.id) for row in rows), [rse_record(row) for row in rows]


def parse_expression(
    session: Session, expression: str, *, for_write: bool = False, ignore_availability: bool = False
) -> list[dict[str, Any]]:
    """The RSEs an expression selects, as dicts sorted by RSE name.

    Raises InvalidRSEExpression for bad syntax, unbalanced parentheses or an empty result.
    With ``for_write``, RSEs blocked for writing are dropped, and RSEWriteBlocked is raised
    if that leaves none, unless ``ignore_availability``.
    """
    result = _resolve(session, expression)
    if not result:
        raise InvalidRSEExpression(f"RSE Expression resulted in an empty set: {validation.shown(expression)}")
    if for_write and not ignore_availability:
        writable = [record for record in result if record["availability_write"]]
        if not writable:
            raise RSEWriteBlocked(
                f"RSE excluded due to write blacklisting: all {len(result)} RSEs of "
                f"{validation.shown(expression)} are blocked for writing"
            )
        result = writable
    return [dict(record) for record in result]


def rse_ids_for(session: Session, expression: str) -> set[str]:
    """The ids of the RSEs an expression selects (same errors as :func:`parse_expression`)."""
    return {record["id"] for record in parse_expression(session, expression)}
