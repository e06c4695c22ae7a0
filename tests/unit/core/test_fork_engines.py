"""A forked child (a gunicorn or granian worker) never uses a connection its parent pooled:
two processes on one socket interleave statements and read each other's results."""

from __future__ import annotations

import os

from sqlalchemy import text

from datamgmt.core.db.session import get_engine, transaction


def _backend(db: str) -> str:
    """Which database session answers: PostgreSQL's backend process id (SQLite has none)."""
    if not db.startswith("postgresql"):
        return "-"
    with transaction(db, read_only=True) as session:
        return str(session.execute(text("SELECT pg_backend_pid()")).scalar())


def test_a_forked_child_opens_its_own_connections(db: str) -> None:
    # One pooled connection: earlier tests on this worker may have left several (threads of the
    # race tests), which the pool hands out in turn, so "the parent's own" would be any of them.
    get_engine(db).dispose()
    parents = _backend(db)
    with transaction(db) as session:
        session.execute(text("SELECT 1"))  # a write unit: its connection goes back to the pool
    engine = get_engine(db)
    assert engine.pool.checkedin() >= 1
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running any of pytest's teardown
        try:
            inherited = get_engine(db) is engine or get_engine(db).pool.checkedin() > 0
            os.write(write, f"{int(inherited)} {_backend(db)}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        inherited, childs = answer.read().split()
    os.waitpid(pid, 0)
    assert inherited == "0", "the child took its parent's engine and pooled connections"
    assert childs == "-" or childs != parents
    assert _backend(db) == parents, "the parent's own connection still serves it"
