"""Metadata on DIDs: typed key-values and JSON/RDF documents.

Key-values live in ``did_meta`` with one column per type (string, number, date), so a
comparison is an indexed ``(key, value_*)`` lookup on SQLite and PostgreSQL alike —
Rucio's JSON plugin does not run on SQLite at all.  The fixed DID columns (bytes,
adler32, account, ...) are readable as metadata but are the system's: setting or
deleting them is refused, except the two that Rucio's clients set as metadata on purpose:
``lifetime`` (``rucio erase`` sets it; it becomes ``expired_at``) and ``is_new``
(``rucio subscription touch`` sets it, so the transmogrifier looks at the DID again).

Rucio's filter dialect over these (``key=value,key2>3;type=dataset``), compiled to one SELECT,
is :mod:`datamgmt.core.metadata_filter`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from datamgmt.core import meta_convention, validation
from datamgmt.core.db.constants import DIDType
from datamgmt.core.db.models import DataIdentifier, DIDDocument, DIDMeta
from datamgmt.core.db.point_reads import PointRead
from datamgmt.core.db.rows import rowcount
from datamgmt.core.db.types import utcnow
from datamgmt.core.did import (
    COLLECTIONS,
    did_columns,
    did_str,
    existing_dids,
    get_did_row,
    not_found,
)
from datamgmt.core.keys import DIDKey, chunks, keys_in
from datamgmt.core.metadata_values import (
    VALUE_COLUMNS,
    Value,
    check_key,
    row_value,
    typed_row,
)
from datamgmt.exceptions import (
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
        rows.extend(
            {"scope": scope, "name": name, **typed_row(check_key(k), v)}
            for k, v in meta.items()
            if k not in COLUMN_KEYS
        )
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
            session.execute(
                update(DataIdentifier)
                .where(keys_in((DataIdentifier.scope, DataIdentifier.name), part))
                .values(dict(values))
                .execution_options(synchronize_session=False)
            )


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
    if not rowcount(result):
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


_VALUES = (DIDMeta.scope, DIDMeta.name, DIDMeta.key, *VALUE_COLUMNS)
#: :func:`key_values` of one DID (``GET /dids/{scope}/{name}/meta``), built once: building the
#: statement and its cache key cost more than running it.
_ONE_DIDS_VALUES = PointRead(
    select(*_VALUES).where(DIDMeta.scope == bindparam("scope"), DIDMeta.name == bindparam("name"))
)


def key_values(session: Session, keys: Sequence[DIDKey]) -> dict[DIDKey, dict[str, Value]]:
    """The key-value metadata of many DIDs, in chunked queries."""
    found: dict[DIDKey, dict[str, Value]] = {key: {} for key in keys}
    for part in chunks(list(dict.fromkeys(keys)), 1000):
        rows: Iterable[Any]
        if len(part) == 1:
            rows = _ONE_DIDS_VALUES.all(session, scope=part[0][0], name=part[0][1])
        else:
            rows = session.execute(select(*_VALUES).where(keys_in((DIDMeta.scope, DIDMeta.name), part)))
        for row in rows:
            found[(row.scope, row.name)][row.key] = row_value(row)
    return found


def get_metadata(session: Session, scope: str, name: str, plugin: str = "ALL") -> dict[str, Any]:
    """Metadata of a DID: ``DID_COLUMN`` (fixed columns), ``JSON`` (key-values, Rucio's name) or ``ALL``."""
    row = did_columns(session, scope, name)
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
    if not rowcount(result):
        raise KeyNotFound(f"no {fmt} document on {validation.shown(did_str(scope, name), 80)}")
