"""Rucio's DID filter dialect: parsing filters and compiling them to one SELECT.

Split from :mod:`datamgmt.core.metadata` (storing key-values and documents), which this reads.
A filter (``key=value,key2>3;type=dataset``) compiles to one SELECT with bound parameters:
fixed columns become column predicates, every key-value condition an EXISTS subquery on
``did_meta``, which also looks inside list values with the database's JSON functions
(``subjects=physics`` finds ``["physics", "astro"]``).  No user text ever becomes SQL text.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard

from sqlalchemy import (
    ColumnElement,
    Float,
    SQLColumnExpression,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from datamgmt.core import validation
from datamgmt.core.db import listing
from datamgmt.core.db.constants import DIDAvailability, DIDType
from datamgmt.core.db.models import DataIdentifier, DIDMeta
from datamgmt.core.db.session import is_postgresql
from datamgmt.core.did import COLLECTIONS, check_scopes
from datamgmt.core.metadata_values import (
    KEY_RE,
    MAX_STRING,
    RESERVED_KEYS,
    Value,
    auto_type,
    naive_utc,
)
from datamgmt.exceptions import (
    DIDFilterSyntaxError,
    InputValidationError,
)

OPERATORS = ("=", "!=", "<", ">", "<=", ">=")
_SUFFIXES = {"": "=", "eq": "=", "ne": "!=", "lt": "<", "gt": ">", "lte": "<=", "gte": ">="}
_TERM_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_\-:]*)\s*(<=|>=|==|!=|<|>|=)\s*(.*?)\s*$", re.S)
_COMPOUND_RE = re.compile(
    r"^\s*([^<>=!]+?)\s*(<=|<|>=|>)\s*([A-Za-z_][A-Za-z0-9_\-:]*)\s*(<=|<|>=|>)\s*([^<>=!]+?)\s*$"
)
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
TYPE_CHOICES = {
    "all": (DIDType.FILE, DIDType.DATASET, DIDType.CONTAINER),
    "collection": COLLECTIONS,
    "dataset": (DIDType.DATASET,),
    "container": (DIDType.CONTAINER,),
    "file": (DIDType.FILE,),
}
_STRING_COLUMNS = {"name", "account", "md5", "adler32", "guid"}
_NUMBER_COLUMNS = {"bytes", "length", "events"}
_DATE_COLUMNS = {"created_at", "updated_at", "expired_at", "closed_at", "accessed_at"}
_BOOL_COLUMNS = {"is_open", "monotonic", "obsolete", "hidden", "complete", "purge_replicas"}
_ENUM_COLUMNS = {"availability"}
FILTER_COLUMNS = _STRING_COLUMNS | _NUMBER_COLUMNS | _DATE_COLUMNS | _BOOL_COLUMNS | _ENUM_COLUMNS
#: What a condition compares with: a scalar (``_condition`` refuses lists and objects).
FilterValue = str | int | float | bool | datetime


@dataclass(frozen=True, slots=True)
class Condition:
    """One ``key op value`` of a filter; ``value`` is typed, wildcards only on strings with = or !=."""

    key: str
    op: str
    value: FilterValue

    @property
    def wildcard(self) -> bool:
        return isinstance(self.value, str) and "*" in self.value


#: A filter: OR over groups, AND within a group.  ``types`` is the group's ``type=`` (or None).
@dataclass(frozen=True, slots=True)
class FilterGroup:
    conditions: tuple[Condition, ...]
    types: tuple[DIDType, ...] | None = None


def _condition(key: str, op: str, value: Any) -> Condition | None:
    """Check one condition; None when it selects everything (``name=*``)."""
    if op not in OPERATORS:
        raise DIDFilterSyntaxError(f"unknown operator {validation.shown(op)}")
    if isinstance(value, str) and value.strip() == "*" and op == "=":
        return None
    if key in ("created_after", "created_before"):
        key, op = "created_at", ">=" if key == "created_after" else "<="
    if not isinstance(value, bool | int | float | str | datetime):
        raise DIDFilterSyntaxError(
            f"the value for {validation.shown(key)} must be a string, number, boolean or date"
        )
    if isinstance(value, str) and len(value) > MAX_STRING:
        raise DIDFilterSyntaxError(f"the value for {validation.shown(key)} is too long")
    if isinstance(value, datetime):
        value = naive_utc(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise DIDFilterSyntaxError(f"the value for {validation.shown(key)} must be finite")
    wildcard = isinstance(value, str) and "*" in value
    if wildcard and op not in ("=", "!="):
        raise DIDFilterSyntaxError(f"wildcards only work with = and != ({validation.shown(key)})")
    if key in _ENUM_COLUMNS:
        if wildcard or op not in ("=", "!="):
            raise DIDFilterSyntaxError(f"{key} can only be compared with = or != and no wildcards")
        try:
            value = DIDAvailability.parse(_column_text(value)).name
        except InputValidationError as exc:
            raise DIDFilterSyntaxError(exc.message) from exc
    elif key in _STRING_COLUMNS:
        if key == "name" and op not in ("=", "!="):
            raise DIDFilterSyntaxError("the name can only be compared with = or !=")
        value = _column_text(value)
    elif key in _NUMBER_COLUMNS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DIDFilterSyntaxError(f"{key} must be compared with a number")
    elif key in _DATE_COLUMNS:
        if not isinstance(value, datetime):
            raise DIDFilterSyntaxError(f"{key} must be compared with a date")
    elif key in _BOOL_COLUMNS:
        if not isinstance(value, bool) or op not in ("=", "!="):
            raise DIDFilterSyntaxError(f"{key} must be compared with true or false, by = or !=")
    elif key in RESERVED_KEYS or not KEY_RE.fullmatch(key):
        raise DIDFilterSyntaxError(f"{validation.shown(key)} cannot be filtered on")
    return Condition(key, op, value)


def _column_text(value: Value) -> str:
    """String columns compare text: an auto-typed ``md5=1234`` means the text ``1234``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        raise DIDFilterSyntaxError("a date cannot be compared with a text column")
    return str(value)


def _parse_term(term: str) -> list[tuple[str, str, Value]]:
    compound = _COMPOUND_RE.match(term)
    if compound:
        low, op1, key, op2, high = compound.groups()
        if (op1 in ("<", "<=")) != (op2 in ("<", "<=")):
            raise DIDFilterSyntaxError(f"the compound filter {validation.shown(term)} mixes directions")
        return [(key, _FLIP[op1], auto_type(low)), (key, op2, auto_type(high))]
    simple = _TERM_RE.match(term)
    if not simple:
        raise DIDFilterSyntaxError(f"cannot parse the filter term {validation.shown(term)}")
    key, op, raw = simple.groups()
    if op == "==":
        op = "="
    if raw == "" or any(raw.startswith(o) for o in ("=", "<", ">", "!")):
        raise DIDFilterSyntaxError(f"the filter term {validation.shown(term)} has no value")
    return [(key, op, auto_type(raw))]


def _group(items: list[tuple[str, str, Any]]) -> FilterGroup:
    conditions: list[Condition] = []
    types: tuple[DIDType, ...] | None = None
    seen: set[tuple[str, str]] = set()
    for key, op, value in items:
        if (key, op) in seen:
            raise DIDFilterSyntaxError(f"{validation.shown(key)} with {op} appears twice in one group")
        seen.add((key, op))
        if key in ("type", "did_type"):
            if op != "=" or not isinstance(value, str) or value.lower() not in TYPE_CHOICES:
                raise DIDFilterSyntaxError(f"type must be one of {', '.join(TYPE_CHOICES)}, with =")
            types = TYPE_CHOICES[value.lower()]
            continue
        condition = _condition(key, op, value)
        if condition is not None:
            conditions.append(condition)
    return FilterGroup(tuple(conditions), types)


def parse_filter_string(text: str) -> list[FilterGroup]:
    """The ``--filter`` dialect: ``;`` separates OR-groups, ``,`` ANDs terms within one."""
    if not isinstance(text, str):
        raise DIDFilterSyntaxError("a filter string is expected")
    groups = []
    for part in text.split(";"):
        terms = [term for term in part.split(",") if term.strip()]
        if not terms and text.strip():
            raise DIDFilterSyntaxError("an empty filter group")
        groups.append(_group([item for term in terms for item in _parse_term(term)]))
    return groups


def parse_filter_dicts(filters: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[FilterGroup]:
    """Rucio's REST form: a dict or a list of dicts of ``key`` / ``key.<op>`` to values.

    String values are typed as the string dialect types them (REST sends every value as
    text); other JSON values keep their type.
    """
    items = [filters] if isinstance(filters, Mapping) else list(filters)
    groups = []
    for item in items:
        if not isinstance(item, Mapping):
            raise DIDFilterSyntaxError("each filter group must be a mapping")
        parsed: list[tuple[str, str, Any]] = []
        for raw_key, raw_value in item.items():
            if not isinstance(raw_key, str):
                raise DIDFilterSyntaxError("filter keys must be strings")
            key, _, suffix = raw_key.partition(".")
            if suffix not in _SUFFIXES:
                raise DIDFilterSyntaxError(f"unknown operator suffix {validation.shown(suffix)}")
            value = (
                auto_type(raw_value)
                if isinstance(raw_value, str) and key not in ("type", "did_type")
                else raw_value
            )
            parsed.append((key, _SUFFIXES[suffix], value))
        groups.append(_group(parsed))
    return groups or [FilterGroup(())]


def parse_rest_filters(text: str) -> list[FilterGroup]:
    """The ``filters=`` query argument as rucio-clients send it: a Python literal (or JSON)."""
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            raise DIDFilterSyntaxError("filters must be a dict or a list of dicts") from exc
    if not isinstance(value, Mapping | list):
        raise DIDFilterSyntaxError("filters must be a dict or a list of dicts")
    return parse_filter_dicts(value)


def parse_filters(filters: str | Mapping[str, Any] | Sequence[Mapping[str, Any]] | None) -> list[FilterGroup]:
    """Any accepted filter form as a list of OR-groups."""
    if filters is None:
        return [FilterGroup(())]
    if isinstance(filters, str):
        return parse_filter_string(filters)
    return parse_filter_dicts(filters)


def with_name_pattern(groups: Sequence[FilterGroup], pattern: str) -> list[FilterGroup]:
    """Each group also requires the name to match ``pattern`` (a ``*`` wildcard), as the CLI's
    ``SCOPE:PATTERN`` adds ``name=PATTERN`` to every group of its ``--filter``."""
    condition = _condition("name", "=", pattern)
    if condition is None:
        return list(groups)
    if any(
        existing.key == "name" and existing.op == "=" for group in groups for existing in group.conditions
    ):
        raise DIDFilterSyntaxError("give the name either as the pattern or in the filter, not both")
    return [FilterGroup((*group.conditions, condition), group.types) for group in groups]


def _like_pattern(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")


def _compare(column: SQLColumnExpression[Any], op: str, value: Any) -> ColumnElement[bool]:
    if isinstance(value, str) and "*" in value:
        like = column.like(_like_pattern(value), escape="\\")
        return like if op == "=" else not_(like)
    comparisons: dict[str, ColumnElement[bool]] = {
        "=": column == value,
        "!=": column != value,
        "<": column < value,
        ">": column > value,
        "<=": column <= value,
        ">=": column >= value,
    }
    return comparisons[op]


def _kv_match(condition: Condition, op: str, postgresql: bool) -> ColumnElement[bool]:
    """The typed comparison of one ``did_meta`` row with the condition's value: the value
    itself, or any element of a list value (``subjects=physics`` finds ``["physics", "astro"]``)."""
    value = condition.value
    if isinstance(value, bool):
        scalar = and_(DIDMeta.value_type == "bool", _compare(DIDMeta.value_num, op, 1.0 if value else 0.0))
    elif isinstance(value, int | float):
        scalar = and_(DIDMeta.value_type.in_(("int", "float")), _compare(DIDMeta.value_num, op, float(value)))
    elif isinstance(value, datetime):
        return and_(DIDMeta.value_type == "date", _compare(DIDMeta.value_date, op, value))
    else:
        scalar = and_(DIDMeta.value_type == "str", _compare(DIDMeta.value_str, op, value))
    return or_(scalar, and_(DIDMeta.value_type == "json", _element_match(value, op, postgresql)))


def _element_match(value: str | int | float | bool, op: str, postgresql: bool) -> ColumnElement[bool]:
    """EXISTS an element of the row's JSON list that matches, by the database's own JSON
    functions (SQLite ``json_each``, PostgreSQL ``jsonb_array_elements``) in the same statement.

    Elements compare by their JSON type as scalar values do: a string with strings (wildcards
    too), a number with numbers, a boolean by equality.  Objects are not lists: the CASE gives
    them (and every non-JSON row) no elements, evaluated before any JSON function sees the text.
    """
    if postgresql:
        document = cast(DIDMeta.value_str, JSONB)
        array = case(
            (DIDMeta.value_type != "json", null()), (func.jsonb_typeof(document) == "array", document)
        )
        source: Any = func.jsonb_array_elements(array).table_valued("value").render_derived()
        kind: Any = func.jsonb_typeof(source.c.value)
        text: Any = source.c.value.op("#>>")(literal_column("'{}'"))
        kinds: dict[object, tuple[str, ...]] = {
            str: ("string",),
            float: ("number",),
            True: ("boolean",),
            False: ("boolean",),
        }
        number: Any = cast(case((kind == "number", text)), Float)
    else:
        array = case(
            (DIDMeta.value_type != "json", null()),
            (func.json_type(DIDMeta.value_str) == "array", DIDMeta.value_str),
        )
        source = func.json_each(array).table_valued("value", "type")
        kind, text = source.c.type, source.c.value
        kinds = {str: ("text",), float: ("integer", "real"), True: ("true",), False: ("false",)}
        number = text
    if isinstance(value, bool):
        # SQLite's json_each tells true from false by type; PostgreSQL's jsonb_typeof says
        # "boolean" for both, so there the element's text must be the value too.
        same = text == ("true" if value else "false") if postgresql else true()
        match = and_(kind.in_(kinds[value]), same, true() if op == "=" else false())
    elif isinstance(value, int | float):
        match = and_(kind.in_(kinds[float]), _compare(number, op, float(value)))
    else:
        match = and_(kind.in_(kinds[str]), _compare(text, op, value))
    return exists(select(literal(1)).select_from(source).where(match))


def _kv_condition(condition: Condition, postgresql: bool) -> ColumnElement[bool]:
    """EXISTS a row for the key whose value matches; ``!=`` means the key is set to something else."""
    base = [
        DIDMeta.scope == DataIdentifier.scope,
        DIDMeta.name == DataIdentifier.name,
        DIDMeta.key == condition.key,
    ]
    if condition.op == "!=":
        return exists().where(*base, not_(_kv_match(condition, "=", postgresql)))
    return exists().where(*base, _kv_match(condition, condition.op, postgresql))


def _column_condition(condition: Condition) -> ColumnElement[bool]:
    column = getattr(DataIdentifier, condition.key)
    value = DIDAvailability[str(condition.value)] if condition.key in _ENUM_COLUMNS else condition.value
    return and_(column.is_not(None), _compare(column, condition.op, value))


def compile_filters(
    scope: str, groups: Sequence[FilterGroup], did_type: str = "collection", *, postgresql: bool = False
) -> Any:
    """The SELECT of DIDs of ``scope`` matching any group; one statement, bound parameters only.
    ``postgresql`` picks the JSON functions that look inside list values."""
    if did_type.lower() not in TYPE_CHOICES:
        raise DIDFilterSyntaxError(f"type must be one of {', '.join(TYPE_CHOICES)}")
    default_types = TYPE_CHOICES[did_type.lower()]
    clauses: list[ColumnElement[bool]] = []
    for group in groups:
        parts: list[ColumnElement[bool]] = [DataIdentifier.did_type.in_(group.types or default_types)]
        for condition in group.conditions:
            is_column = condition.key in FILTER_COLUMNS
            parts.append(_column_condition(condition) if is_column else _kv_condition(condition, postgresql))
        clauses.append(and_(true(), *parts))
    return select(DataIdentifier).where(DataIdentifier.scope == scope, or_(false(), *clauses))


def list_dids(
    session: Session,
    scope: str,
    filters: str | Mapping[str, Any] | Sequence[Mapping[str, Any]] | Sequence[FilterGroup] | None = None,
    did_type: str = "collection",
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """DIDs of a scope matching a filter, in name order, as Rucio's long listing shows them."""
    check_scopes(session, [scope])
    # Not narrowed on the other side: _is_parsed took every FilterGroup list, only raw forms are left.
    groups = filters if _is_parsed(filters) else parse_filters(filters)  # type: ignore[arg-type]
    query = compile_filters(
        scope,
        groups,
        did_type,
        postgresql=is_postgresql(session),
    ).order_by(DataIdentifier.name)
    if limit is not None:
        validation.non_negative_int(limit, "limit")
        query = query.limit(limit)
    for row in listing.scalars(session, query):
        yield {
            "scope": row.scope,
            "name": row.name,
            "did_type": row.did_type.name,
            "bytes": row.bytes,
            "length": row.length,
        }


def _is_parsed(filters: object) -> TypeGuard[list[FilterGroup]]:
    return isinstance(filters, list) and bool(filters) and all(isinstance(g, FilterGroup) for g in filters)
