"""Metadata on DIDs: typed key-values, JSON/RDF documents, and Rucio's filter dialect.

Key-values live in ``did_meta`` with one column per type (string, number, date), so a
comparison is an indexed ``(key, value_*)`` lookup on SQLite and PostgreSQL alike —
Rucio's JSON plugin does not run on SQLite at all.  The fixed DID columns (bytes,
adler32, account, ...) are readable as metadata but are the system's: setting or
deleting them is refused, except the two that Rucio's clients set as metadata on purpose:
``lifetime`` (``rucio erase`` sets it; it becomes ``expired_at``) and ``is_new``
(``rucio subscription touch`` sets it, so the transmogrifier looks at the DID again).

A filter (``key=value,key2>3;type=dataset``) compiles to one SELECT with bound
parameters: fixed columns become column predicates, every key-value condition an
EXISTS subquery on ``did_meta``, which also looks inside list values with the database's JSON
functions (``subjects=physics`` finds ``["physics", "astro"]``).  No user text ever becomes SQL text.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    and_,
    case,
    cast,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    literal_column,
    not_,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from datamgmt.core import meta_convention, validation
from datamgmt.core.db.constants import DIDAvailability, DIDType
from datamgmt.core.db.models import DataIdentifier, DIDDocument, DIDMeta
from datamgmt.core.db.session import is_postgresql
from datamgmt.core.db.types import utcnow
from datamgmt.core.did import (
    COLLECTIONS,
    check_scopes,
    did_str,
    existing_dids,
    get_did_row,
    not_found,
)
from datamgmt.core.keys import DIDKey, chunks, keys_in
from datamgmt.core.metadata_values import KEY_RE as KEY_RE
from datamgmt.core.metadata_values import (
    MAX_STRING,
    VALUE_COLUMNS,
    Value,
    auto_type,
    check_key,
    naive_utc,
    row_value,
    typed_row,
)
from datamgmt.core.metadata_values import RESERVED_KEYS as RESERVED_KEYS
from datamgmt.exceptions import (
    DIDFilterSyntaxError,
    InputValidationError,
    InvalidMetadata,
    KeyNotFound,
)

MAX_DOCUMENT = 1 << 20
DOCUMENT_FORMATS = {"json": "json", "turtle": "turtle", "rdfxml": "xml"}


# --- key-value metadata ----------------------------------------------------------------------
def set_metadata(session: Session, scope: str, name: str, key: str, value: Any) -> None:
    set_metadata_bulk(session, scope, name, {key: value})


def set_metadata_bulk(session: Session, scope: str, name: str, meta: Mapping[str, Any]) -> None:
    set_dids_metadata_bulk(session, [{"scope": scope, "name": name, "meta": meta}])


def set_dids_metadata_bulk(session: Session, dids: Sequence[Mapping[str, Any]]) -> None:
    """Set metadata on many DIDs at once: each item has scope, name and a ``meta`` dict.

    Every key and value is checked before anything is written; then one chunked DELETE
    and one INSERT replace the keys.  A published DID's share keeps the record that was
    published until ``pid.update_share`` makes the change a new version everywhere at once.
    """
    rows: list[dict[str, Any]] = []
    keys: list[DIDKey] = []
    column_changes: dict[tuple[tuple[str, Any], ...], list[DIDKey]] = {}
    now = utcnow()
    for item in dids:
        scope, name = validation.scope_name(item.get("scope")), validation.did_name(item.get("name"))
        meta = item.get("meta")
        if not isinstance(meta, Mapping):
            raise InvalidMetadata(
                f"metadata of {validation.shown(did_str(scope, name), 80)} must be a mapping"
            )
        keys.append((scope, name))
        columns = _column_values(meta, now)
        if columns:
            column_changes.setdefault(tuple(sorted(columns.items())), []).append((scope, name))
        rows.extend({"scope": scope, "name": name, **typed_row(check_key(k), v)} for k, v in meta.items()
                    if k not in COLUMN_KEYS)  # fmt: skip
    found = existing_dids(session, keys)
    for key in keys:
        row = found.get(key)
        if row is None or row.did_type not in (DIDType.FILE, *COLLECTIONS):
            raise not_found(*key)
    meta_convention.check(session, [(found[(i["scope"], i["name"])].did_type, i["meta"]) for i in dids])
    targets = [(row["scope"], row["name"], row["key"]) for row in rows]
    if len(set(targets)) != len(targets):
        raise InvalidMetadata("the request sets the same key of the same DID twice")
    for part in chunks(targets, 1000):
        session.execute(delete(DIDMeta).where(keys_in((DIDMeta.scope, DIDMeta.name, DIDMeta.key), part)))
    if rows:
        session.execute(insert(DIDMeta), [{**row, "created_at": now, "updated_at": now} for row in rows])
    for values, changed in column_changes.items():  # one UPDATE per distinct change and chunk of DIDs
        for part in chunks(changed, 1000):
            session.execute(update(DataIdentifier).where(keys_in((DataIdentifier.scope, DataIdentifier.name), part))
                            .values(dict(values)).execution_options(synchronize_session=False))  # fmt: skip


def _lifetime(value: Any, now: datetime) -> dict[str, Any]:
    seconds = lifetime_seconds(value)
    return {"expired_at": None if seconds is None else now + timedelta(seconds=seconds)}


def _is_new(value: Any, _now: datetime) -> dict[str, Any]:
    if not isinstance(value, bool) and str(value).lower() not in ("true", "false", "1", "0"):
        raise InvalidMetadata("is_new must be true or false")
    return {"is_new": value if isinstance(value, bool) else str(value).lower() in ("true", "1")}


#: Metadata keys that set a fixed DID column instead of a key-value, each with its converter.
COLUMN_KEYS: dict[str, Callable[[Any, datetime], dict[str, Any]]] = {"lifetime": _lifetime, "is_new": _is_new}


def _column_values(meta: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in COLUMN_KEYS.keys() & meta.keys():
        values.update(COLUMN_KEYS[key](meta[key], now))
    return values


def lifetime_seconds(value: Any) -> int | None:
    """Rucio's ``lifetime`` pseudo-key: seconds until the DID expires (``rucio did remove`` sets 86400),
    or None (or "none") to keep it for good; it sets the DID's expiry, not a metadata row."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise InvalidMetadata(
            f"lifetime must be a number of seconds or none, not {validation.shown(value)}"
        ) from None
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds < 0:
        raise InvalidMetadata(
            f"lifetime must be a non-negative number of seconds, not {validation.shown(value)}"
        )
    return int(seconds)


def delete_metadata(session: Session, scope: str, name: str, key: str) -> None:
    get_did_row(session, scope, name)
    check_key(key)
    result = session.execute(
        delete(DIDMeta).where(DIDMeta.scope == scope, DIDMeta.name == name, DIDMeta.key == key)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise KeyNotFound(
            f"key {validation.shown(key)} is not set on {validation.shown(did_str(scope, name), 80)}"
        )


def column_metadata(row: DataIdentifier) -> dict[str, Any]:
    """The fixed columns of a DID under their column names, enums by name (Rucio's DID_COLUMN)."""
    result: dict[str, Any] = {}
    for column in DataIdentifier.__table__.columns:
        value = getattr(row, column.key)
        result[column.key] = value.name if hasattr(value, "name") and not isinstance(value, str) else value
    # Rucio's end of life (``eol_at``, set by its lifetime model) is our lifetime's expiry; the
    # stock client asks for it before it requests a lifetime exception.
    result["eol_at"] = row.expired_at
    return result


def key_values(session: Session, keys: Sequence[DIDKey]) -> dict[DIDKey, dict[str, Value]]:
    """The key-value metadata of many DIDs, in chunked queries."""
    found: dict[DIDKey, dict[str, Value]] = {key: {} for key in keys}
    for part in chunks(list(dict.fromkeys(keys)), 1000):
        columns = (DIDMeta.scope, DIDMeta.name, DIDMeta.key, *VALUE_COLUMNS)
        for row in session.execute(select(*columns).where(keys_in((DIDMeta.scope, DIDMeta.name), part))):
            found[(row.scope, row.name)][row.key] = row_value(row)
    return found


def get_metadata(session: Session, scope: str, name: str, plugin: str = "ALL") -> dict[str, Any]:
    """Metadata of a DID: ``DID_COLUMN`` (fixed columns), ``JSON`` (key-values, Rucio's name) or ``ALL``."""
    row = get_did_row(session, scope, name)
    wanted = plugin.upper()
    if wanted not in ("ALL", "DID_COLUMN", "JSON"):
        raise InvalidMetadata(f"unknown metadata plugin {validation.shown(plugin)}: ALL, DID_COLUMN or JSON")
    result: dict[str, Any] = {}
    if wanted in ("ALL", "JSON"):
        result.update(key_values(session, [(scope, name)])[(scope, name)])
    if wanted in ("ALL", "DID_COLUMN"):
        result.update(column_metadata(row))
    return result


# --- documents -------------------------------------------------------------------------------
def _document_format(fmt: str) -> str:
    if fmt not in DOCUMENT_FORMATS:
        raise InvalidMetadata(
            f"unknown document format {validation.shown(fmt)}: {', '.join(DOCUMENT_FORMATS)}"
        )
    return fmt


def _parse_document(fmt: str, content: str) -> Any:
    if fmt == "json":
        try:
            return json.loads(content)
        except ValueError as exc:
            raise InvalidMetadata(f"the JSON document does not parse: {exc}") from exc
    import rdflib  # deferred: only RDF documents need it

    try:
        return rdflib.Graph().parse(data=content, format=DOCUMENT_FORMATS[fmt])
    except Exception as exc:  # rdflib raises many unrelated classes for bad input
        raise InvalidMetadata(
            f"the {fmt} document does not parse: {type(exc).__name__}: {str(exc)[:200]}"
        ) from exc


def set_document(
    session: Session, scope: str, name: str, fmt: str, content: str | Mapping[str, Any] | list[Any]
) -> None:
    """Attach (or replace) a JSON, Turtle or RDF/XML document, validated by parsing it."""
    get_did_row(session, scope, name)
    _document_format(fmt)
    if not isinstance(content, str):
        if fmt != "json":
            raise InvalidMetadata("an RDF document must be given as text")
        content = json.dumps(content)
    if len(content) > MAX_DOCUMENT:
        raise InvalidMetadata(f"the document is larger than {MAX_DOCUMENT} characters")
    _parse_document(fmt, content)
    row = session.get(DIDDocument, (scope, name, fmt))
    if row is None:
        session.add(DIDDocument(scope=scope, name=name, format=fmt, content=content))
    else:
        row.content = content
    session.flush()


def get_document(session: Session, scope: str, name: str, fmt: str, parsed: bool = False) -> Any:
    """The document as stored text, or parsed (a JSON value, or an ``rdflib.Graph``)."""
    get_did_row(session, scope, name)
    row = session.get(DIDDocument, (scope, name, _document_format(fmt)))
    if row is None:
        raise KeyNotFound(f"no {fmt} document on {validation.shown(did_str(scope, name), 80)}")
    return _parse_document(fmt, row.content) if parsed else row.content


def list_documents(session: Session, scope: str, name: str) -> list[str]:
    get_did_row(session, scope, name)
    return list(
        session.scalars(
            select(DIDDocument.format)
            .where(DIDDocument.scope == scope, DIDDocument.name == name)
            .order_by(DIDDocument.format)
        )
    )


def delete_document(session: Session, scope: str, name: str, fmt: str) -> None:
    get_did_row(session, scope, name)
    result = session.execute(
        delete(DIDDocument).where(
            DIDDocument.scope == scope, DIDDocument.name == name, DIDDocument.format == _document_format(fmt)
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise KeyNotFound(f"no {fmt} document on {validation.shown(did_str(scope, name), 80)}")


# --- filters ---------------------------------------------------------------------------------
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


@dataclass(frozen=True, slots=True)
class Condition:
    """One ``key op value`` of a filter; ``value`` is typed, wildcards only on strings with = or !=."""

    key: str
    op: str
    value: Value

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


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if isinstance(value, str) and "*" in value:
        like = column.like(_like_pattern(value), escape="\\")
        return like if op == "=" else not_(like)
    return {
        "=": column == value,
        "!=": column != value,
        "<": column < value,
        ">": column > value,
        "<=": column <= value,
        ">=": column >= value,
    }[op]


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
        kinds = {str: ("string",), float: ("number",), True: ("boolean",), False: ("boolean",)}
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
        match = and_(kind.in_(kinds[value]), true() if op == "=" else false())
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
    value = DIDAvailability[condition.value] if condition.key in _ENUM_COLUMNS else condition.value
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
    filters: str | Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    did_type: str = "collection",
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """DIDs of a scope matching a filter, in name order, as Rucio's long listing shows them."""
    check_scopes(session, [scope])
    groups = filters if _is_parsed(filters) else parse_filters(filters)  # type: ignore[arg-type]
    query = compile_filters(
        scope,
        groups,
        did_type,  # type: ignore[arg-type]
        postgresql=is_postgresql(session),
    ).order_by(DataIdentifier.name)
    if limit is not None:
        validation.non_negative_int(limit, "limit")
        query = query.limit(limit)
    for row in session.scalars(query.execution_options(yield_per=1000)):
        yield {
            "scope": row.scope,
            "name": row.name,
            "did_type": row.did_type.name,
            "bytes": row.bytes,
            "length": row.length,
        }


def _is_parsed(filters: object) -> bool:
    return isinstance(filters, list) and bool(filters) and all(isinstance(g, FilterGroup) for g in filters)
