"""``core/db/bulk.insert_rows``: the rows the ORM's executemany would write, in one statement
per chunk (on SQLite, one driver ``executemany`` per chunk, values converted by the columns'
types as SQLAlchemy converts them)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from datamgmt.core import rse
from datamgmt.core.db import bulk
from datamgmt.core.db.constants import RequestState, RequestType
from datamgmt.core.db.models import Request
from tests.statements import captured


def _rows(rse_id: str, count: int) -> list[dict[str, object]]:
    return [
        {
            "scope": "data",
            "name": f"f{i}",
            "dest_rse_id": rse_id,
            "state": RequestState.QUEUED if i % 2 else RequestState.SUBMITTED,
            "bytes": i if i % 3 else None,
            "attributes": f'{{"tries": {i}}}' if i % 5 == 1 else None,
            "not_before": datetime(2026, 1, 1 + i % 28) if i % 4 else None,
        }
        for i in range(count)
    ]


def _inserts(session: Session) -> AbstractContextManager[list[Any]]:
    """The parameters of each INSERT INTO requests run inside the block."""
    return captured(
        session.get_bind().engine,
        lambda _cursor, statement, params: params if statement.startswith("INSERT INTO requests") else None,
    )


def test_rows_and_defaults_are_written_as_given(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    site = rse.add_rse(session, "SITE")
    monkeypatch.setattr(bulk, "CHUNK", 3)  # 7 rows: three statements
    with _inserts(session) as inserts:
        bulk.insert_rows(session, Request, _rows(site, 7))
    assert len(inserts) == 3
    written = session.scalars(select(Request).order_by(Request.name)).all()
    expected = sorted(_rows(site, 7), key=lambda row: str(row["name"]))
    assert [
        (r.scope, r.name, r.dest_rse_id, r.state, r.bytes, r.attributes, r.not_before) for r in written
    ] == [tuple(row.values()) for row in expected]
    # defaults: a key gets one value per row, the rest the column's default
    assert len({r.id for r in written}) == 7
    assert {(r.request_type, r.retry_count, r.priority, r.activity) for r in written} == {
        (RequestType.TRANSFER, 0, 3, "User Subscriptions")
    }
    assert all(r.created_at is not None and r.updated_at is not None for r in written)


def test_nothing_to_insert_runs_no_statement(session: Session) -> None:
    bulk.insert_rows(session, Request, [])
    assert session.scalar(select(Request.id)) is None


def test_rows_must_have_the_same_keys(session: Session) -> None:
    site = rse.add_rse(session, "SITE")
    rows = _rows(site, 2)
    del rows[1]["attributes"]
    with pytest.raises(ValueError, match="same keys"):
        bulk.insert_rows(session, Request, rows)


def test_a_value_in_every_row_is_sent_once_on_postgresql(session: Session) -> None:
    """Arrays only for the columns whose values differ: psycopg builds each array in Python."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite takes rows, not arrays")
    site = rse.add_rse(session, "SITE")
    with _inserts(session) as sent:
        bulk.insert_rows(session, Request, _rows(site, 6))
    (params,) = sent
    arrays = sorted(len(value) for value in params.values() if isinstance(value, list))
    # id, name, state, bytes, attributes, not_before differ; scope, dest_rse_id and the
    # other defaults are one value each
    assert arrays == [6] * 6
    assert "data" in params.values() and site in params.values()
    assert session.scalar(select(func.count()).select_from(Request).where(Request.scope == "data")) == 6
