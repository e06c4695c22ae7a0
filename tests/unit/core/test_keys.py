"""Batches of keys matched in SQL (``core/keys.keys_in``): the same rows as a row comparison,
written so that the database looks keys up instead of scanning a scope (or one scan per key)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import event, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from datamgmt.core import did, did_content, replica, rse, scope
from datamgmt.core.db.constants import DIDType
from datamgmt.core.db.models import RSE, DataIdentifier, Replica
from datamgmt.core.db.session import is_postgresql
from datamgmt.core.keys import keys_in
from datamgmt.core.replica_path import refuse_used_paths
from datamgmt.exceptions import Duplicate


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
    rows = session.execute(
        select(Replica.scope, Replica.name, RSE.rse).join(RSE, RSE.id == Replica.rse_id).where(condition)
    )
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


def test_one_column_and_a_wide_first_column_match_too(catalogue):
    """The narrow columns may be none (one-column keys) or come after the wide one."""
    one = keys_in((Replica.name,), [("f0",), ("f3",)], wide=0)
    assert {(s, n) for s, n, _ in matched(catalogue, one)} == {
        (s, n) for s in ("data", "other") for n in ("f0", "f3")
    }
    first_wide = keys_in(
        (Replica.name, Replica.scope), [("f1", "other"), ("f2", "other"), ("f2", "data")], wide=0
    )
    assert {(s, n) for s, n, _ in matched(catalogue, first_wide)} == {
        ("other", "f1"),
        ("other", "f2"),
        ("data", "f2"),
    }


def test_a_cached_statement_matches_the_keys_it_is_run_with(catalogue):
    """Statements over keys are cached by shape: the second run (same shape, other keys) must
    bind its own keys, not the first run's."""
    first = keys_in((Replica.scope, Replica.name), [("data", "f0"), ("data", "f1")])
    second = keys_in((Replica.scope, Replica.name), [("data", "f2"), ("data", "f3")])
    assert {n for _, n, _ in matched(catalogue, first)} == {"f0", "f1"}
    assert {n for _, n, _ in matched(catalogue, second)} == {"f2", "f3"}
    assert {n for _, n, _ in matched(catalogue, ~second & (Replica.scope == "data"))} == {
        "f0",
        "f1",
        "f4",
        "f5",
    }


def test_no_keys_match_nothing_and_a_subquery_still_works(catalogue):
    assert matched(catalogue, keys_in((Replica.scope, Replica.name), [])) == set()
    wanted = select(Replica.scope, Replica.name).where(Replica.scope == "other", Replica.name == "f3")
    assert {(s, n) for s, n, _ in matched(catalogue, keys_in((Replica.scope, Replica.name), wanted))} == {
        ("other", "f3")
    }


def test_one_key_is_plain_equalities_which_postgresql_can_prepare(catalogue):
    """A single DID (a metadata read, one file's replicas) binds no array: statements with arrays
    are planned on every call (core/db/plans.py), plain ones once."""
    one = keys_in((Replica.scope, Replica.name), [("other", "f2")])
    assert {(s, n) for s, n, _ in matched(catalogue, one)} == {("other", "f2")}
    rest = {
        (s, n) for s, n, _ in matched(catalogue, ~keys_in((Replica.scope, Replica.name), [("other", "f2")]))
    }
    assert ("other", "f2") not in rest and len(rest) == 11
    pg = str(select(Replica.path).where(one).compile(dialect=postgresql.dialect()))
    assert "unnest" not in pg and "replicas.scope = " in pg and "replicas.name = " in pg


def test_each_dialect_gets_its_own_form_and_negation_stays_a_condition():
    """SQLite: one ``IN`` list per scope (and RSE); PostgreSQL: a semi-join on one array per
    column, never a row comparison of literals (one index scan per key: 7.2 s for 5,000)."""
    keys = [("data", f"f{i}", "r") for i in range(500)] + [("other", "g", "r")]
    condition = keys_in((Replica.scope, Replica.name, Replica.rse_id), keys)
    pg = str(update(Replica).where(condition, Replica.lock_cnt > 0).compile(dialect=postgresql.dialect()))
    assert "(replicas.scope, replicas.name, replicas.rse_id) IN (SELECT unnest(" in pg, pg
    assert pg.count("unnest(") == 3 and "replicas.name IN" not in pg
    lite = str(select(Replica.name).where(~condition).compile(dialect=sqlite.dialect()))
    assert lite.count("replicas.name IN") == 2 and "= 1" not in lite and "NOT (" in lite, lite


def test_postgresql_looks_each_key_up_instead_of_filtering_the_whole_scope(session, root):
    """On PostgreSQL, an UPDATE over a chunk of replica keys, on a table whose statistics do not
    know the scope yet (fresh registrations), is planned as index lookups by the whole key.
    The former ``scope = ? AND name IN (…)`` was planned as a scan of the scope filtered by
    the list, so each chunk of a rule read every replica of the scope (284 locks/s at 10^5)."""
    if not is_postgresql(session):
        pytest.skip("a PostgreSQL plan")
    scope.add_scope(session, "data", "root")
    rse.add_rse(session, "SITE-A")
    site = session.scalar(select(RSE.id).where(RSE.rse == "SITE-A"))
    session.execute(
        insert(DataIdentifier),
        [
            {"scope": "data", "name": f"f{i}", "did_type": DIDType.FILE, "account": "root", "bytes": 1}
            for i in range(20_000)
        ],
    )
    session.execute(
        insert(Replica),
        [
            {"scope": "data", "name": f"f{i}", "rse_id": site, "bytes": 1, "path": f"p/f{i}"}
            for i in range(20_000)
        ],
    )
    keys = [("data", f"f{i}", site) for i in range(0, 20_000, 2_000)]
    statement = update(Replica).where(keys_in((Replica.scope, Replica.name, Replica.rse_id), keys))
    compiled = statement.values(lock_cnt=Replica.lock_cnt + 1).compile(dialect=session.get_bind().dialect)
    plan = session.connection().exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params).scalar()
    scans = list(_nodes(plan[0]["Plan"]))
    replica_scans = [
        node for node in scans if node.get("Relation Name") == "replicas" and "Scan" in node["Node Type"]
    ]
    assert [node["Node Type"] for node in replica_scans] == ["Index Scan"], plan
    assert "name" in replica_scans[0]["Index Cond"] and "Filter" not in replica_scans[0], plan
    assert session.execute(statement.values(lock_cnt=Replica.lock_cnt + 1)).rowcount == len(keys)
    session.rollback()


@pytest.fixture
def twenty_thousand_files(session, root):
    """20,000 files and an open dataset in scope ``data``, on PostgreSQL only (plans)."""
    if not is_postgresql(session):
        pytest.skip("a PostgreSQL plan")
    scope.add_scope(session, "data", "root")
    dids = [
        {"scope": "data", "name": f"f{i}", "did_type": DIDType.FILE, "account": "root"} for i in range(20_000)
    ]
    dids.append(
        {"scope": "data", "name": "ds", "did_type": DIDType.DATASET, "account": "root", "is_open": True}
    )
    session.execute(insert(DataIdentifier), dids)
    yield session
    session.rollback()


def _did_scans(session, compiled, values) -> list[str]:  # type: ignore[no-untyped-def]
    """How the plan of ``compiled`` run with ``values`` reads the table of DIDs."""
    params = {key: getattr(value, "value", value) for key, value in compiled.construct_params(values).items()}
    plan = session.connection().exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", params).scalar()
    return [node["Node Type"] for node in _nodes(plan[0]["Plan"]) if node.get("Relation Name") == "dids"]


FIVE_HUNDRED = [("data", f"f{i}") for i in range(0, 20_000, 40)]


def test_attach_probes_each_file_however_large_the_table_of_dids(twenty_thousand_files):
    """A 500-file attach on PostgreSQL finds each file by an index probe.  As a semi-join on
    the arrays (:func:`keys_in`), PostgreSQL priced 500 probes above one scan of 20,000 to
    50,000 DIDs and hash-joined the keys against every DID: 6.7 ms of each chunk at 50,000
    DIDs, growing with the catalogue."""
    session = twenty_thousand_files
    compiled, values = did_content._attach_statement(session.get_bind().dialect, FIVE_HUNDRED)
    parent = {"parent_scope": "data", "parent_name": "ds", "parent_type": "D", "now": datetime(2026, 1, 1)}
    assert _did_scans(session, compiled, parent | values) == ["Index Scan"]
    assert (
        did_content.attach(session, "data", "ds", [{"scope": "data", "name": f"f{i}"} for i in (1, 2)]) == 2
    )
    assert session.scalar(select(DataIdentifier.length).where(DataIdentifier.name == "ds")) == 2


def test_looking_up_a_chunk_of_dids_probes_each_one(twenty_thousand_files):
    """``did.existing_dids`` (registration, rules, metadata) probes the index per DID too."""
    session = twenty_thousand_files
    compiled = did._PROBED_BRIEF.compile(dialect=session.get_bind().dialect)
    values = {"scopes": [key[0] for key in FIVE_HUNDRED], "names": [key[1] for key in FIVE_HUNDRED]}
    assert _did_scans(session, compiled, values) == ["Index Scan"]
    found = did.existing_dids(session, [*FIVE_HUNDRED, ("data", "absent")])
    assert sorted(found) == sorted(FIVE_HUNDRED)
    assert found[("data", "f40")].did_type == DIDType.FILE


def _nodes(node: dict):  # type: ignore[no-untyped-def]
    yield node
    for child in node.get("Plans", ()):
        yield from _nodes(child)


def test_registering_looks_each_path_up_instead_of_reading_the_whole_rse(session, root):
    """The path check of a registration (``replica_path.refuse_used_paths``) looks paths up by
    the (rse_id, path) index.  Its former ``rse_id = ? AND path IN (…)`` read every replica of
    the RSE per chunk on PostgreSQL: 60,000 files slowed from 0.1 s to 1.4 s a chunk."""
    scope.add_scope(session, "data", "root")
    rse.add_rse(session, "SITE-A")
    site = session.scalar(select(RSE.id).where(RSE.rse == "SITE-A"))
    count = 20_000 if is_postgresql(session) else 100
    session.execute(
        insert(DataIdentifier),
        [
            {"scope": "data", "name": f"f{i}", "did_type": DIDType.FILE, "account": "root", "bytes": 1}
            for i in range(count)
        ],
    )
    session.execute(
        insert(Replica),
        [
            {"scope": "data", "name": f"f{i}", "rse_id": site, "bytes": 1, "path": f"p/f{i}"}
            for i in range(count)
        ],
    )
    engine = session.get_bind().engine
    seen: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement, parameters, _context, _many):  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        refuse_used_paths(session, site, "SITE-A", [f"p/new{i}" for i in range(500)])
    finally:
        event.remove(engine, "before_cursor_execute", record)
    with pytest.raises(Duplicate, match="already used by the replica of 'data:f7'"):
        refuse_used_paths(session, site, "SITE-A", ["p/new1", "p/f7"])
    if is_postgresql(session):
        [(statement, parameters)] = [item for item in seen if "FROM replicas" in item[0]]
        plan = session.connection().exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).scalar()
        replica_scans = [
            node
            for node in _nodes(plan[0]["Plan"])
            if node.get("Relation Name") == "replicas" and "Scan" in node["Node Type"]
        ]
        assert [node["Node Type"] for node in replica_scans] == ["Index Scan"], plan
        assert "path" in replica_scans[0]["Index Cond"] and "Filter" not in replica_scans[0], plan
    session.rollback()
