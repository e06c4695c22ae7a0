"""What one small request costs the database: one transaction (one pooled connection checkout),
shared by authentication and the view, and one token lookup."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from datamgmt.core.db.session import get_engine


@contextmanager
def checkouts(db: str) -> Iterator[list[int]]:
    counted: list[int] = []
    engine = get_engine(db)

    def count(*_args: object) -> None:
        counted.append(1)

    event.listen(engine.pool, "checkout", count)
    try:
        yield counted
    finally:
        event.remove(engine.pool, "checkout", count)


def test_a_get_is_one_transaction(client: FlaskClient, root_headers: dict[str, str], db: str, session: Session) -> None:
    session.rollback()
    assert client.get("/accounts/root", headers=root_headers).status_code == 200  # warm
    with checkouts(db) as counted:
        assert client.get("/accounts/root", headers=root_headers).status_code == 200
    assert len(counted) == 1


def test_a_small_post_is_one_transaction(
    client: FlaskClient, root_headers: dict[str, str], db: str, session: Session
) -> None:
    session.rollback()
    with checkouts(db) as counted:
        response = client.post("/accounts/root/scopes/cheap", headers=root_headers)
    assert response.status_code == 201, response.data
    assert len(counted) == 1
    assert client.get("/accounts/root/scopes/", headers=root_headers).json == ["cheap"]


def test_a_request_refused_before_its_view_ends_its_unit(
    client: FlaskClient, root_headers: dict[str, str], db: str, session: Session
) -> None:
    """A body the view refuses leaves no transaction open behind (the next write still gets the lock)."""
    session.rollback()
    response = client.post("/dids/nosuchscope/ds", headers=root_headers, data="{not json")
    assert response.status_code == 400
    body = json.dumps({"type": "DATASET"})
    assert client.post("/accounts/root/scopes/after", headers=root_headers).status_code == 201
    assert client.post("/dids/after/ds", headers=root_headers, data=body).status_code == 201
    assert get_engine(db).pool.checkedout() == 0
