"""Metadata values: how a key-value is checked, typed and stored in ``did_meta`` and read back.

Kept apart from :mod:`datamgmt.core.metadata` (setting, listing and filtering) because every
layer that reads a value (records for publishing, subscriptions, filters) needs these rules.
A value is a string, number, boolean or date (each in its indexed column), or a list or object
(several creators with affiliation and ORCID, subjects...), stored as JSON text.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime
from typing import Any

from datamgmt.core import validation
from datamgmt.core.db.models import DataIdentifier, DIDMeta
from datamgmt.exceptions import AccessDenied, InvalidMetadata

Value = str | int | float | bool | datetime | list[Any] | dict[str, Any]

#: Every fixed column of ``dids``: readable through get_metadata, never writable as metadata.
RESERVED_KEYS = frozenset(column.key for column in DataIdentifier.__table__.columns) | {
    "type",
    "lifetime",
    "eol_at",
    "created_before",
    "created_after",
}
KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-:]{0,127}$")
MAX_STRING = 4000
_DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.%fZ",
    "%Y-%m-%dT%H:%M:%SZ",
    "%a, %d %b %Y %H:%M:%S UTC",
)
_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")


# --- values ----------------------------------------------------------------------------------
def parse_date(text: str) -> datetime | None:
    """A naive-UTC datetime when ``text`` is in one of Rucio's date forms, else None."""
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def auto_type(text: str) -> Value:
    """Rucio's typing of filter values: booleans, dates, integers, floats, else the string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    moment = parse_date(text.strip())
    if moment is not None:
        return moment
    if _INT_RE.match(text.strip()):
        return int(text)
    if _FLOAT_RE.match(text.strip()):
        number = float(text)
        if math.isfinite(number):
            return number
    return text


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def typed_row(key: str, value: Any) -> dict[str, Any]:
    """The ``did_meta`` columns for one value; refuses what cannot be stored faithfully.

    JSON has no date type, so a string that is exactly one of the date forms the filter
    dialect reads is stored as a date: ``created>2024-01-01`` then compares dates.
    """
    row: dict[str, Any] = {"key": key, "value_str": None, "value_num": None, "value_date": None}
    if isinstance(value, bool):
        row.update(value_type="bool", value_num=1.0 if value else 0.0)
    elif isinstance(value, int):
        if abs(value) > 2**53:
            raise InvalidMetadata(f"the integer for {validation.shown(key)} is beyond exact float range")
        row.update(value_type="int", value_num=float(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidMetadata(f"the number for {validation.shown(key)} must be finite")
        row.update(value_type="float", value_num=value)
    elif isinstance(value, datetime | date):
        moment = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
        row.update(value_type="date", value_date=naive_utc(moment))
    elif isinstance(value, str):
        if len(value) > MAX_STRING:
            raise InvalidMetadata(
                f"the value of {validation.shown(key)} is longer than {MAX_STRING} characters"
            )
        parsed = parse_date(value)
        if parsed is not None:
            row.update(value_type="date", value_date=parsed)
        else:
            row.update(value_type="str", value_str=value)
    elif isinstance(value, list | dict):
        row.update(value_type="json", value_str=_structured_text(key, value))
    else:
        raise InvalidMetadata(
            f"the value of {validation.shown(key)} must be a string, number, boolean, date, list or object, "
            f"not {type(value).__name__}"
        )
    return row


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _structured_text(key: str, value: list[Any] | dict[str, Any]) -> str:
    """A list or object value as JSON text: several creators (each an object with name,
    affiliation, orcid), subjects, related identifiers.  Two levels at most (a list of objects
    whose values are scalars or lists of scalars), so every crosswalk can render it."""

    def flat(item: Any) -> bool:
        return _is_scalar(item) or (isinstance(item, list) and all(_is_scalar(part) for part in item))

    def shallow(item: Any) -> bool:
        return flat(item) or (
            isinstance(item, dict) and all(isinstance(k, str) and flat(v) for k, v in item.items())
        )

    items = value if isinstance(value, list) else [value]
    if not all(shallow(item) for item in items):
        raise InvalidMetadata(
            f"the value of {validation.shown(key)} nests too deep: a list of texts, numbers or "
            "objects whose values are texts, numbers or lists of them"
        )
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if len(text) > MAX_STRING:
        raise InvalidMetadata(
            f"the value of {validation.shown(key)} is longer than {MAX_STRING} characters as JSON"
        )
    return text


#: Plain columns, not entities: a page of OAI-PMH records reads hundreds of rows.
VALUE_COLUMNS = (DIDMeta.value_type, DIDMeta.value_str, DIDMeta.value_num, DIDMeta.value_date)


def row_value(row: Any) -> Value:
    """The Python value a ``did_meta`` row (entity or column row) holds."""
    if row.value_type == "bool":
        return bool(row.value_num)
    if row.value_type == "int":
        return int(row.value_num)
    if row.value_type == "float":
        return float(row.value_num)
    if row.value_type == "date":
        moment: datetime = row.value_date
        return moment
    if row.value_type == "json":
        decoded: Value = json.loads(row.value_str)
        return decoded
    text: str = row.value_str
    return text


def check_key(key: object) -> str:
    """A writable metadata key: the fixed columns are the system's, and ``.`` separates operators."""
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        raise InvalidMetadata(
            f"invalid metadata key {validation.shown(key)}: a letter or '_' then up to 127 of letters, digits, '_-:'"
        )
    if key in RESERVED_KEYS:
        raise AccessDenied(
            f"{validation.shown(key)} is a reserved system key and cannot be set or deleted as metadata"
        )
    return key
