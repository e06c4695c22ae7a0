"""Column types shared by the models."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from datamgmt.core.db.constants import CodedEnum


def utcnow() -> datetime:
    """Naive UTC now: every timestamp in the catalogue is naive UTC, on every backend."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_id() -> str:
    """A 32-character lowercase hex id, Rucio's wire form of a GUID."""
    return uuid.uuid4().hex


class Code(TypeDecorator[CodedEnum]):
    """Stores a :class:`CodedEnum` member as its short code."""

    impl = String
    cache_ok = True

    def __init__(self, enum_cls: type[CodedEnum], length: int = 1) -> None:
        super().__init__(length)
        self.enum_cls = enum_cls

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if isinstance(value, self.enum_cls):
            code: str = value.value
            return code
        return None if value is None else self.enum_cls.parse(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> CodedEnum | None:
        return None if value is None else self.enum_cls(value)
