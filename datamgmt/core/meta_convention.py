"""Metadata conventions (Rucio's ``did_keys`` and ``did_key_map``): which values a key may take.

An admin declares a key with the DIDs it applies to (``key_type``), an optional value type
(``str``, ``int`` or ``float``) and an optional regular expression, then lists its allowed
values.  Rucio checks only the ``datatype`` of new datasets against the list; we check every
key that has a convention, on every metadata write (:func:`check`), because a convention that
only some writes obey is no convention (docs/rucio-compatibility.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datamgmt.core.db.constants import DIDType
from datamgmt.core.db.models import DIDKey, DIDKeyValue
from datamgmt.core.db.types import utcnow
from datamgmt.core.validation import shown
from datamgmt.exceptions import (
    Duplicate,
    InvalidValueForKey,
    KeyNotFound,
    UnsupportedKeyType,
    UnsupportedValueType,
)

#: Rucio's ``KeyType`` and the DID types each admits (DERIVED keys are computed, never set).
KEY_TYPES: dict[str, frozenset[DIDType]] = {
    "ALL": frozenset({DIDType.FILE, DIDType.DATASET, DIDType.CONTAINER}),
    "COLLECTION": frozenset({DIDType.DATASET, DIDType.CONTAINER}),
    "CONTAINER": frozenset({DIDType.CONTAINER}),
    "DATASET": frozenset({DIDType.DATASET}),
    "FILE": frozenset({DIDType.FILE}),
    "DERIVED": frozenset(),
}
_SHORT = {"F": "FILE", "D": "DATASET", "C": "CONTAINER"}
#: Rucio's ``AUTHORIZED_VALUE_TYPES``, by the names its clients send.
VALUE_TYPES: dict[str, tuple[type, ...]] = {
    "<class 'str'>": (str,),
    "<class 'int'>": (int,),
    "<class 'float'>": (float, int),
    "str": (str,),
    "int": (int,),
    "float": (float, int),
}
KEY_LIMIT = 128
VALUE_LIMIT = 255


def _key(key: object) -> str:
    if not isinstance(key, str) or not key or len(key) > KEY_LIMIT:
        raise InvalidValueForKey(f"a key must be text of 1 to {KEY_LIMIT} characters, not {shown(key)}")
    return key


def add_key(
    session: Session,
    key: str,
    key_type: object = None,
    value_type: object = None,
    value_regexp: object = None,
) -> None:
    _key(key)
    kind = _SHORT.get(str(key_type), str(key_type or "ALL")).upper()
    if kind not in KEY_TYPES:
        raise UnsupportedKeyType(f"The type {shown(key_type)} is not supported for keys!")
    if value_type is not None and value_type not in VALUE_TYPES:
        raise UnsupportedValueType(f"The type {shown(value_type)} is not supported for values!")
    if value_regexp is not None:
        if not isinstance(value_regexp, str) or len(value_regexp) > VALUE_LIMIT:
            raise InvalidValueForKey(f"value_regexp must be text of at most {VALUE_LIMIT} characters")
        try:
            re.compile(value_regexp)
        except re.error as exc:
            raise InvalidValueForKey(f"value_regexp is not a regular expression: {exc}") from exc
    if session.get(DIDKey, key) is not None:
        raise Duplicate(f"key {shown(key)} already exists!")
    now = utcnow()
    session.add(
        DIDKey(
            key=key,
            key_type=kind,
            value_type=value_type,
            value_regexp=value_regexp,
            is_enum=False,
            created_at=now,
            updated_at=now,
        )
    )
    session.flush()


def list_keys(session: Session) -> list[str]:
    return list(session.scalars(select(DIDKey.key).order_by(DIDKey.key)))


def list_values(session: Session, key: str) -> list[str]:
    return list(
        session.scalars(select(DIDKeyValue.value).where(DIDKeyValue.key == key).order_by(DIDKeyValue.value))
    )


def _check_value(convention: DIDKey, value: Any) -> None:
    """The value fits the key's declared type and regular expression."""
    kinds = VALUE_TYPES.get(convention.value_type or "")
    if kinds and (not isinstance(value, kinds) or isinstance(value, bool)):
        raise InvalidValueForKey(
            f"The value {shown(value)} for the key {shown(convention.key)} does not match the required type {convention.value_type}"
        )
    if convention.value_regexp and not re.match(convention.value_regexp, str(value)):
        raise InvalidValueForKey(
            f"The value {shown(value)} for the key {shown(convention.key)} does not match the regular expression "
            f"{shown(convention.value_regexp, 80)}"
        )


def add_value(session: Session, key: str, value: object) -> None:
    convention = session.get(DIDKey, key) if isinstance(key, str) else None
    if convention is None:
        raise KeyNotFound(f"key {shown(key)} does not exist!")
    if not isinstance(value, str | int | float) or isinstance(value, bool) or len(str(value)) > VALUE_LIMIT:
        raise InvalidValueForKey(
            f"a value must be text or a number of at most {VALUE_LIMIT} characters, not {shown(value)}"
        )
    _check_value(convention, value)
    now = utcnow()
    try:
        with session.begin_nested():
            session.add(DIDKeyValue(key=key, value=str(value), created_at=now, updated_at=now))
    except IntegrityError as exc:
        raise Duplicate(f"key-value {shown(key)}-{shown(value)} already exists!") from exc
    convention.is_enum = True


def check(session: Session, writes: Iterable[tuple[DIDType, Mapping[str, Any]]]) -> None:
    """Refuse metadata that breaks a convention: wrong DID type, value type, pattern or enumeration.

    One query for the conventions of every key written, one for the allowed values of the
    enumerated ones; keys without a convention are free."""
    writes = list(writes)
    used = {key for _, meta in writes for key in meta}
    if not used:
        return
    conventions = {row.key: row for row in session.scalars(select(DIDKey).where(DIDKey.key.in_(used)))}
    if not conventions:
        return
    enumerated = [key for key, row in conventions.items() if row.is_enum]
    allowed: dict[str, set[str]] = {}
    if enumerated:
        for key, value in session.execute(
            select(DIDKeyValue.key, DIDKeyValue.value).where(DIDKeyValue.key.in_(enumerated))
        ):
            allowed.setdefault(key, set()).add(value)
    for did_type, meta in writes:
        for key, value in meta.items():
            convention = conventions.get(key)
            if convention is None:
                continue
            if did_type not in KEY_TYPES.get(convention.key_type, frozenset()):
                raise InvalidValueForKey(
                    f"The key {shown(key)} applies to {convention.key_type} DIDs, not to a {did_type.name}"
                )
            _check_value(convention, value)
            if convention.is_enum and str(value) not in allowed.get(key, set()):
                raise InvalidValueForKey(
                    f"The value {shown(value)} is not one of the values allowed for the key {shown(key)}"
                )
