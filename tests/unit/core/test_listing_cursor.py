"""A replica listing of a few files is read whole; a longer one is streamed through a
server-side cursor (core/replica.py, ``_READ_WHOLE_UP_TO``).  The cursor's BEGIN, DECLARE,
FETCH, CLOSE and COMMIT are round trips of their own, more than one file's replicas cost, and
SQLAlchemy does not count them as statements, so only the cursors themselves show it."""

from __future__ import annotations

import psycopg
import pytest

from datamgmt.core import replica, rse, scope
from datamgmt.core.db.session import is_postgresql


@pytest.fixture
def server_cursors(session, root, monkeypatch) -> list[str]:
    if not is_postgresql(session):
        pytest.skip("server-side cursors are PostgreSQL's")
    scope.add_scope(session, "data", "root")
    rse.add_rse(session, "SITE-A")
    files = [{"scope": "data", "name": f"f{i}", "bytes": 1, "adler32": "0000000a"} for i in range(40)]
    replica.add_replicas(session, "SITE-A", files, "root")
    session.commit()
    named: list[str] = []
    cursor = psycopg.Connection.cursor

    def recording(connection, *args, **kwargs):
        name = args[0] if args else kwargs.get("name", "")
        if name:
            named.append(name)
        return cursor(connection, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "cursor", recording)
    return named


def _listed(session, count: int) -> int:
    dids = [{"scope": "data", "name": f"f{i}"} for i in range(count)]
    return sum(1 for _ in replica.list_replicas(session, dids))


@pytest.mark.parametrize("count", [1, 16])
def test_a_few_files_are_read_whole(session, server_cursors, count):
    assert _listed(session, count) == count
    assert server_cursors == []


def test_more_files_are_streamed(session, server_cursors):
    assert _listed(session, 40) == 40
    assert len(server_cursors) == 1
