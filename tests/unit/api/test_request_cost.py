"""What one small request costs the database: one transaction (one pooled connection checkout),
shared by authentication and the view, and one token lookup."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from flask.testing import FlaskClient
from psycopg.pq import TransactionStatus
from sqlalchemy import event
from sqlalchemy.orm import Session

from datamgmt.core.db.session import get_engine
from tests.statements import captured, sent_to_postgresql


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


def test_a_get_is_one_transaction(
    client: FlaskClient, root_headers: dict[str, str], db: str, session: Session
) -> None:
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


def statements(db: str) -> AbstractContextManager[list[str]]:
    """The SQL statements run on the catalogue meanwhile, less the BEGINs that open a unit."""
    return captured(
        get_engine(db), lambda _cursor, statement, _: None if statement.startswith("BEGIN") else statement
    )


def test_an_expression_answered_from_the_snapshot_touches_no_connection(
    client: FlaskClient, root_headers: dict[str, str], db: str, session: Session
) -> None:
    """Token and expression both cached: the answer comes from memory, with no checkout, BEGIN or query."""
    session.rollback()
    assert client.post("/rses/SNAP-A", headers=root_headers, data="{}").status_code == 201
    assert (
        client.post("/rses/SNAP-A/attr/tier", headers=root_headers, data='{"value": "1"}').status_code == 201
    )
    for _ in range(2):  # the first loads the snapshot and caches the answer
        response = client.get("/rses/", query_string={"expression": "tier=1"}, headers=root_headers)
        assert response.status_code == 200
    with checkouts(db) as counted, statements(db) as seen:
        response = client.get("/rses/", query_string={"expression": "tier=1"}, headers=root_headers)
    assert response.status_code == 200
    assert [json.loads(line) for line in response.data.splitlines()] == [{"rse": "SNAP-A"}]
    assert (counted, seen) == ([], [])
    # computed in memory, sent whole: no chunked framing for the client to undo
    assert response.headers["Content-Type"] == "application/x-json-stream"
    assert response.headers.get("Content-Length") == str(len(response.data))


def writes_sent(db: str) -> AbstractContextManager[list[tuple[str, bool]]]:
    """What reaches the database meanwhile, less the BEGINs that open a unit: each statement, and
    on PostgreSQL whether a transaction was still open after it (a write on a bare cursor,
    core/db/point_writes.py, is seen there too)."""
    if not db.startswith("postgresql"):
        return captured(
            get_engine(db),
            lambda _cursor, statement, _: None if statement.startswith("BEGIN") else (statement, False),
        )
    return sent_to_postgresql(
        lambda cursor, statement, _: (
            None
            if statement.startswith("BEGIN")
            else (statement, cursor.connection.info.transaction_status != TransactionStatus.IDLE)
        )
    )


def test_adding_an_rse_is_one_statement_on_postgresql(
    client: FlaskClient, root_headers: dict[str, str], db: str, session: Session
) -> None:
    """The RSE and its ``<name>=true`` attribute in one statement, committed as it runs (SQLite,
    which has no data-modifying CTE, takes two in one transaction); a taken name is refused."""
    session.rollback()
    assert client.get("/accounts/whoami", headers=root_headers).status_code == 303  # the token, cached
    with writes_sent(db) as seen:
        assert client.post("/rses/ONE-RSE", headers=root_headers, data="{}").status_code == 201
    if db.startswith("postgresql"):
        assert [(statement.split()[0], still_open) for statement, still_open in seen] == [("WITH", False)], (
            seen
        )
    else:
        assert [statement.split()[0] for statement, _ in seen] == ["INSERT", "INSERT"], seen
    assert client.get("/rses/ONE-RSE/attr/", headers=root_headers).json == {"ONE-RSE": True}
    again = client.post("/rses/ONE-RSE", headers=root_headers, data="{}")
    assert again.status_code == 409 and again.headers["ExceptionClass"] == "Duplicate"
    assert client.get("/rses/ONE-RSE/attr/", headers=root_headers).json == {"ONE-RSE": True}


def test_admin_calls_take_one_statement_each(
    client: FlaskClient, root_headers: dict[str, str], db: str, session: Session
) -> None:
    """One INSERT … SELECT … ON CONFLICT whose SELECT finds the RSE's id (and checks the account):
    no lookup before the write, no ORM load; on PostgreSQL it commits as it runs."""
    session.rollback()
    assert client.post("/rses/TWO-A", headers=root_headers, data="{}").status_code == 201
    protocol = {"hostname": "localhost", "port": 0, "prefix": "/data/", "impl": "posix"}
    calls = [
        ("/rses/TWO-A/attr/tier", {"value": "1"}),
        ("/rses/TWO-A/attr/tier", {"value": "2"}),  # an update takes the same statement
        ("/rses/TWO-A/protocols/file", protocol),
        ("/accounts/root/limits/local/TWO-A", {"bytes": 10**12}),
        ("/accounts/root/limits/local/TWO-A", {"bytes": 10**13}),
        ("/accounts/root/scopes/onestatement", None),
    ]
    for path, body in calls:
        with writes_sent(db) as seen:
            response = client.post(path, headers=root_headers, data=json.dumps(body) if body else None)
        assert response.status_code == 201, response.data
        assert len(seen) == 1 and seen[0][0].lstrip().upper().startswith("INSERT"), seen
        # On PostgreSQL the INSERT committed as it ran: no COMMIT round trip after it.
        assert seen[0][1] is False, path
    assert client.get("/rses/TWO-A/attr/", headers=root_headers).json["tier"] == "2"
    assert client.get("/accounts/root/limits/local/TWO-A", headers=root_headers).json == {"TWO-A": 10**13}
    assert client.get("/accounts/root/scopes/", headers=root_headers).json == ["onestatement"]
    duplicate = client.post("/rses/TWO-A/protocols/file", headers=root_headers, data=json.dumps(protocol))
    again = client.post("/rses/TWO-A", headers=root_headers, data="{}")
    scope_again = client.post("/accounts/root/scopes/onestatement", headers=root_headers)
    for refused in (duplicate, again, scope_again):
        assert refused.status_code == 409 and json.loads(refused.data)["ExceptionClass"] == "Duplicate"


def test_admin_calls_name_what_their_write_did_not_find(
    client: FlaskClient, root_headers: dict[str, str], session: Session
) -> None:
    """The write found no live RSE or account, so nothing was written and the error says which."""
    session.rollback()
    for name in ("GONE-A", "LIVE-A"):
        assert client.post(f"/rses/{name}", headers=root_headers, data="{}").status_code == 201
    assert client.delete("/rses/GONE-A", headers=root_headers).status_code == 200
    limit = json.dumps({"bytes": 10})
    calls = [
        ("/rses/GONE-A/attr/tier", '{"value": "1"}', "RSENotFound"),
        ("/rses/NONE-A/attr/tier", '{"value": "1"}', "RSENotFound"),
        ("/rses/GONE-A/protocols/file", json.dumps({"hostname": "h", "port": 1}), "RSENotFound"),
        ("/accounts/root/limits/local/GONE-A", limit, "RSENotFound"),
        ("/accounts/nobody/limits/local/LIVE-A", limit, "AccountNotFound"),
        ("/accounts/nobody/limits/local/NONE-A", limit, "AccountNotFound"),
        ("/accounts/nobody/scopes/orphan", None, "AccountNotFound"),
    ]
    # Numbers are checked before the write, which SQLite's driver could not even bind.
    huge = 2**64
    too_large = [
        ("/accounts/nobody/limits/local/NONE-A", {"bytes": huge}),
        ("/rses/NONE-A/protocols/file", {"hostname": "h", "port": huge}),
        ("/rses/NONE-A/protocols/file", {"hostname": "h", "port": 70000}),
        ("/rses/NONE-A/protocols/file", {"hostname": "h", "domains": {"lan": {"read": huge}}}),
    ]
    for path, body in too_large:
        response = client.post(path, headers=root_headers, data=json.dumps(body))
        assert response.status_code == 400, (path, response.data)
    for path, body, error in calls:
        response = client.post(path, headers=root_headers, data=body)
        assert response.status_code == 404 and json.loads(response.data)["ExceptionClass"] == error, (
            path,
            response.data,
        )
    assert client.get("/rses/LIVE-A/attr/", headers=root_headers).json == {"LIVE-A": True}
    assert client.get("/accounts/root/limits/local", headers=root_headers).json == {}
    assert client.get("/accounts/root/scopes/", headers=root_headers).json == []


def _files_and_dataset(
    client: FlaskClient, headers: dict[str, str], scope: str, count: int
) -> list[dict[str, Any]]:
    """``count`` files of a new ``scope`` registered on a new RSE, and the empty dataset ``scope:ds``."""
    rse = f"{scope.upper()}-RSE"
    assert client.post(f"/rses/{rse}", headers=headers, data="{}").status_code == 201
    assert client.post(f"/accounts/root/scopes/{scope}", headers=headers).status_code == 201
    files = [{"scope": scope, "name": f"f{i}", "bytes": 1, "adler32": "0cc737eb"} for i in range(count)]
    body = {"rse": rse, "files": files, "ignore_availability": True}
    assert client.post("/replicas", headers=headers, data=json.dumps(body)).status_code == 201
    assert client.post(f"/dids/{scope}/ds", headers=headers, data='{"type": "DATASET"}').status_code == 201
    return files


def test_attaching_files_is_one_insert_per_chunk(
    client: FlaskClient, root_headers: dict[str, str], db: str, session: Session
) -> None:
    """The parent, one INSERT … SELECT of the 300 files, the parent's counters and its judge entry."""
    session.rollback()
    files = _files_and_dataset(client, root_headers, "att", 300)
    dids = json.dumps({"dids": [{"scope": "att", "name": f["name"]} for f in files]})
    with statements(db) as seen:
        assert client.post("/dids/att/ds/dids", headers=root_headers, data=dids).status_code == 201
    assert len(seen) == 4, seen
    did = client.get("/dids/att/ds", headers=root_headers).json
    assert (did["length"], did["bytes"]) == (300, 300)


def test_attaching_on_postgresql_compiles_its_statement_once(
    client: FlaskClient, root_headers: dict[str, str], db: str, session: Session
) -> None:
    """SQLAlchemy caches no statement built on a dialect's insert (``ON CONFLICT``): the attach
    statement is compiled once and each chunk only binds its keys (core/did_content.py)."""
    if not db.startswith("postgresql"):
        pytest.skip("SQLite's attach is built for its keys")
    session.rollback()
    files = _files_and_dataset(client, root_headers, "attc", 20)
    compiled: list[object] = []

    def record(
        _conn: object, _cursor: object, statement: str, _params: object, context: Any, _many: bool
    ) -> None:
        if statement.startswith("INSERT INTO contents"):
            compiled.append(context.compiled)

    event.listen(get_engine(db), "before_cursor_execute", record)
    try:
        for half in (files[:10], files[10:]):
            dids = json.dumps({"dids": [{"scope": "attc", "name": f["name"]} for f in half]})
            assert client.post("/dids/attc/ds/dids", headers=root_headers, data=dids).status_code == 201
    finally:
        event.remove(get_engine(db), "before_cursor_execute", record)
    assert len(compiled) == 2 and compiled[0] is compiled[1]
    assert client.get("/dids/attc/ds", headers=root_headers).json["length"] == 20


def test_an_rse_with_its_protocols_is_read_once_per_generation(
    client: FlaskClient, root_headers: dict[str, str], db: str, session: Session
) -> None:
    """``GET /rses/{rse}`` (every upload and download asks it): the first after a change loads
    the generation's snapshot (RSEs, attributes) and the RSE's protocols, one query each; the
    next ones read nothing (core/rse_access.py)."""
    session.rollback()
    assert client.post("/rses/ONCE", headers=root_headers, data="{}").status_code == 201
    protocol = {"scheme": "file", "hostname": "localhost", "port": 0, "prefix": "/data/", "impl": "posix"}
    assert (
        client.post("/rses/ONCE/protocols/file", headers=root_headers, data=json.dumps(protocol)).status_code
        == 201
    )
    with statements(db) as seen:
        response = client.get("/rses/ONCE", headers=root_headers)
    assert response.status_code == 200, response.data
    assert len(seen) == 3, seen
    assert [p["scheme"] for p in response.json["protocols"]] == ["file"]
    assert response.json["lfn2pfn_algorithm"] == "hash"
    with statements(db) as seen:
        again = client.get("/rses/ONCE", headers=root_headers)
    assert (again.status_code, seen) == (200, [])
    assert again.json == response.json


def _one_file_on(client: FlaskClient, headers: dict[str, str], rse: str) -> None:
    """RSE ``rse`` with a root protocol and the file ``cost:f`` on it, in the dataset ``cost:ds``."""
    protocol = {"scheme": "root", "hostname": "xrd.example.org", "port": 1094, "prefix": "/data/"}
    for path, body in (
        (f"/rses/{rse}", {}),
        (f"/rses/{rse}/protocols/root", protocol),
        ("/accounts/root/scopes/cost", {}),
        (
            "/replicas",
            {"rse": rse, "files": [{"scope": "cost", "name": "f", "bytes": 1, "adler32": "0cc737eb"}]},
        ),
        ("/dids/cost/ds", {"type": "DATASET"}),
        ("/dids/cost/ds/dids", {"dids": [{"scope": "cost", "name": "f"}]}),
    ):
        response = client.post(path, headers=headers, data=json.dumps(body))
        assert response.status_code == 201, (path, response.data)


def _rule_on_the_dataset(rse: str) -> str:
    """The body of a one-copy rule on ``cost:ds`` at ``rse``."""
    return json.dumps(
        {"dids": [{"scope": "cost", "name": "ds"}], "account": "root", "copies": 1, "rse_expression": rse}
    )


def test_one_files_replicas_read_no_rse_table(
    client: FlaskClient, root_headers: dict[str, str], db: str, session: Session
) -> None:
    """``GET /replicas/{scope}/{name}`` of a file: the DID and its replicas, two plain reads; the
    RSE's type, algorithm and protocols come from the generation's snapshot (they took three
    queries, and a server-side cursor four more round trips on PostgreSQL)."""
    session.rollback()
    _one_file_on(client, root_headers, "LISTED")
    assert client.get("/replicas/cost/f", headers=root_headers).status_code == 200  # loads the snapshot
    with statements(db) as seen:
        response = client.get("/replicas/cost/f", headers=root_headers)
    assert response.status_code == 200, response.data
    assert len(seen) == 2, seen
    assert not [sql for sql in seen if "rse_protocols" in sql or "rse_attr_map" in sql or "FROM rses" in sql]
    (line,) = [json.loads(text) for text in response.data.splitlines()]
    (pfn,) = line["pfns"]
    assert pfn.startswith("root://xrd.example.org:1094//data/cost/")
    assert line["pfns"][pfn]["type"] == "DISK" and line["rses"] == {"LISTED": [pfn]}


def test_a_dids_rules_carry_its_bytes_without_another_lookup(
    client: FlaskClient, root_headers: dict[str, str], db: str, session: Session
) -> None:
    """``GET /dids/{scope}/{name}/rules``: the DID (a point read), then its rules, one statement;
    each rule shows the DID's bytes."""
    session.rollback()
    _one_file_on(client, root_headers, "RULED")
    rule = _rule_on_the_dataset("RULED")
    assert client.post("/rules/", headers=root_headers, data=rule).status_code == 201
    with statements(db) as seen:
        response = client.get("/dids/cost/ds/rules", headers=root_headers)
    assert response.status_code == 200, response.data
    assert len(seen) == 1, seen
    (line,) = [json.loads(text) for text in response.data.splitlines()]
    assert (line["scope"], line["name"], line["bytes"], line["rse_expression"]) == ("cost", "ds", 1, "RULED")


def test_a_dids_metadata_and_a_rule_are_point_reads(
    client: FlaskClient, root_headers: dict[str, str], db: str, session: Session
) -> None:
    """``GET /dids/{scope}/{name}/meta`` and ``GET /rules/{id}`` (polled while a rule is applied)
    read rows on a bare cursor, no session statement and no ORM entity (core/db/point_reads.py);
    typed values (a number, a date) come back as the session would give them."""
    session.rollback()
    _one_file_on(client, root_headers, "POINT")
    for key, value in (("run", 7), ("energy", 13.6), ("tag", "x")):
        body = json.dumps({"value": value})
        assert client.post(f"/dids/cost/ds/meta/{key}", headers=root_headers, data=body).status_code == 201
    rule = _rule_on_the_dataset("POINT")
    created = client.post("/rules/", headers=root_headers, data=rule)
    assert created.status_code == 201, created.data
    rule_id = json.loads(created.data)[0]
    with statements(db) as seen:
        meta = client.get("/dids/cost/ds/meta", headers=root_headers)
        ruled = client.get(f"/rules/{rule_id}", headers=root_headers)
    assert (meta.status_code, ruled.status_code, seen) == (200, 200, [])
    assert (meta.json["run"], meta.json["energy"], meta.json["tag"]) == (7, 13.6, "x")
    assert (meta.json["did_type"], meta.json["bytes"], meta.json["is_open"]) == ("DATASET", 1, True)
    assert meta.json["created_at"].endswith(" UTC")
    assert (ruled.json["id"], ruled.json["state"], ruled.json["locks_ok_cnt"]) == (rule_id, "OK", 1)
    missing = client.get("/rules/" + "0" * 32, headers=root_headers)
    assert (missing.status_code, missing.headers["ExceptionClass"]) == (404, "RuleNotFound")


def test_a_rule_on_a_dataset_walks_no_tree(
    client: FlaskClient, root_headers: dict[str, str], db: str, session: Session
) -> None:
    """A dataset holds files only: its files are its direct contents, read without the
    recursive walk (and its DISTINCT) that a container needs."""
    session.rollback()
    _one_file_on(client, root_headers, "FLAT")
    rule = _rule_on_the_dataset("FLAT")
    with statements(db) as seen:
        created = client.post("/rules/", headers=root_headers, data=rule)
    assert created.status_code == 201, created.data
    assert not [sql for sql in seen if "RECURSIVE" in sql], seen
    rule_id = json.loads(created.data)[0]
    assert client.get(f"/rules/{rule_id}", headers=root_headers).json["locks_ok_cnt"] == 1
