"""``core/db/listing``: a short listing is one plain SELECT, a long one streams from its start."""

from __future__ import annotations

from contextlib import AbstractContextManager

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from datamgmt.core import rse
from datamgmt.core.db import listing
from datamgmt.core.db.models import RSE
from tests.statements import captured


def _server_cursors(session: Session) -> AbstractContextManager[list[str]]:
    """The statements run inside the block through a server-side (named) cursor."""
    return captured(
        session.get_bind().engine,
        lambda cursor, statement, _: statement if getattr(cursor, "name", None) else None,
    )


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


def test_a_listing_limited_to_a_short_one_is_one_plain_select(session: Session) -> None:
    for name in ("B1", "B2", "B3"):
        rse.add_rse(session, name)
    session.commit()
    short = select(RSE.rse).where(RSE.rse.like("B%")).order_by(RSE.rse).limit(listing.FIRST)
    long = short.limit(listing.FIRST + 1)
    with _server_cursors(session) as named:
        assert [row.rse for row in listing.rows(session, short)] == ["B1", "B2", "B3"]
    assert named == []
    with _server_cursors(session) as named:
        assert [row.rse for row in listing.rows(session, long)] == ["B1", "B2", "B3"]
    assert len(named) == (1 if session.get_bind().dialect.name == "postgresql" else 0)
