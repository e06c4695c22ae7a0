"""``core/db/listing``: a short listing is one plain SELECT, a long one streams from its start."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from datamgmt.core import rse
from datamgmt.core.db import listing
from datamgmt.core.db.models import RSE


@contextmanager
def _server_cursors(session: Session) -> Iterator[list[str]]:
    """The statements run inside the block through a server-side (named) cursor."""
    named: list[str] = []
    engine = session.get_bind().engine

    def keep(_conn, cursor, statement, _params, _context, _many):  # type: ignore[no-untyped-def]
        if getattr(cursor, "name", None):
            named.append(statement)

    event.listen(engine, "before_cursor_execute", keep)
    try:
        yield named
    finally:
        event.remove(engine, "before_cursor_execute", keep)


@pytest.mark.parametrize("count", [2, 3])
def test_every_row_in_order_whether_short_or_long(
    session: Session, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    monkeypatch.setattr(listing, "FIRST", 2)
    monkeypatch.setattr(listing, "BATCH", 2)
    names = [f"SITE{i}" for i in reversed(range(count))]
    for name in names:
        rse.add_rse(session, name)
    session.commit()
    query = select(RSE).where(RSE.rse.like("SITE%")).order_by(RSE.rse)
    with _server_cursors(session) as named:
        entities = [row.rse for row in listing.scalars(session, query)]
        tuples = list(listing.rows(session, select(RSE.rse, RSE.deterministic).order_by(RSE.rse)))
    assert entities == sorted(names)
    assert tuples == [(name, True) for name in sorted(names)]
    streamed = count > listing.FIRST and session.get_bind().dialect.name == "postgresql"
    assert len(named) == (2 if streamed else 0)


def test_a_listing_with_its_own_limit_keeps_it(session: Session) -> None:
    for name in ("A1", "A2", "A3"):
        rse.add_rse(session, name)
    query = select(RSE.rse).where(RSE.rse.like("A%")).order_by(RSE.rse).limit(2)
    assert [row.rse for row in listing.rows(session, query)] == ["A1", "A2"]
