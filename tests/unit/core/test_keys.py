"""Batches of keys matched in SQL (``core/keys.keys_in``): the same rows as a row comparison,
written so that PostgreSQL uses one index range per scope instead of one scan per key."""

from __future__ import annotations

import pytest
from sqlalchemy import select, tuple_, update
from sqlalchemy.dialects import postgresql

from datamgmt.core import replica, rse, scope
from datamgmt.core.db.models import RSE, Replica
from datamgmt.core.keys import keys_in


@pytest.fixture
def catalogue(session, root):
    for name in ("data", "other"):
        scope.add_scope(session, name, "root")
    for name in ("SITE-A", "SITE-B"):
        rse.add_rse(session, name)
    for name in ("data", "other"):
        for site in ("SITE-A", "SITE-B"):
            files = [{"scope": name, "name": f"f{i}", "bytes": 1, "adler32": "0000000a"} for i in range(6)]
            replica.add_replicas(session, site, files, "root")
    session.commit()
    return session


def matched(session, condition) -> set[tuple[str, str, str]]:
    rows = session.execute(select(Replica.scope, Replica.name, RSE.rse).join(RSE, RSE.id == Replica.rse_id)
                           .where(condition))  # fmt: skip
    return {tuple(row) for row in rows}


def test_keys_across_scopes_and_rses_match_exactly_the_row_comparison(catalogue):
    site_a = catalogue.scalar(select(RSE.id).where(RSE.rse == "SITE-A"))
    site_b = catalogue.scalar(select(RSE.id).where(RSE.rse == "SITE-B"))
    keys = [("data", "f1", site_a), ("other", "f1", site_b), ("data", "f4", site_b), ("other", "f5", site_a)]
    columns = (Replica.scope, Replica.name, Replica.rse_id)
    assert matched(catalogue, keys_in(columns, keys)) == matched(catalogue, tuple_(*columns).in_(keys))
    assert matched(catalogue, keys_in(columns, keys)) == {
        ("data", "f1", "SITE-A"),
        ("other", "f1", "SITE-B"),
        ("data", "f4", "SITE-B"),
        ("other", "f5", "SITE-A"),
    }
    two = keys_in((Replica.scope, Replica.name), [("data", "f0"), ("other", "f2")])
    assert {(s, n) for s, n, _ in matched(catalogue, two)} == {("data", "f0"), ("other", "f2")}


def test_no_keys_match_nothing_and_a_subquery_still_works(catalogue):
    assert matched(catalogue, keys_in((Replica.scope, Replica.name), [])) == set()
    wanted = select(Replica.scope, Replica.name).where(Replica.scope == "other", Replica.name == "f3")
    assert {(s, n) for s, n, _ in matched(catalogue, keys_in((Replica.scope, Replica.name), wanted))} == {
        ("other", "f3")
    }


def test_postgresql_gets_one_in_list_per_scope_not_a_row_comparison():
    """The lock-count update of the rule injector, as PostgreSQL receives it: the row
    comparison planned one index scan per key (7.2 s for 5,000 keys in ``bench/keys_in.py``)."""
    keys = [("data", f"f{i}") for i in range(500)] + [("other", "g")]
    statement = update(Replica).where(Replica.rse_id == "r", keys_in((Replica.scope, Replica.name), keys))
    sql = str(statement.compile(dialect=postgresql.dialect()))
    assert "(replicas.scope, replicas.name) IN" not in sql
    assert sql.count("replicas.name IN") == 2, sql
