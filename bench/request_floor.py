"""The per-request floor in process: what each layer of a small call costs, without HTTP.

``python -m bench.request_floor [--db URL] [--calls N]`` runs the real app through Flask's
test client on a fresh catalogue and times ``--calls`` calls of each kind.  The first four
add one layer each, so the differences say where a small call's time goes:

* ``ping``: Flask, routing and the after-request hooks (public, no catalogue);
* ``whoami``: the same plus authentication from the token cache (no statement);
* ``get_did``: plus one read-only unit with one SELECT (``GET /dids/{scope}/{name}``);
* ``rse_attr``: plus one write unit (``POST /rses/{rse}/attr/{key}``, one ``INSERT … SELECT``).

The rest are the other GETs the stock client sends most, to find the slow ones:

* ``rse``: ``GET /rses/{rse}``, the RSE with its protocols (before every upload and download);
* ``did_meta``: ``GET /dids/{scope}/{name}/meta``;
* ``rule``: ``GET /rules/{id}`` (``rucio rule-info``, and clients waiting for a rule);
* ``did_rules``: ``GET /dids/{scope}/{name}/rules``, streamed;
* ``file_replicas``: ``GET /replicas/{scope}/{name}`` of one file, streamed.

Prints ``name size seconds rate peak_rss`` per kind, then the wall and CPU milliseconds and
the SQL statements per call (CPU: this process's, so the database server's work shows only in
the wall time; statements: those SQLAlchemy runs, so SQLite's BEGIN counts and a point read
on a bare cursor, ``core/db/point_reads.py``, does not).  ``rest_workload.py`` measures calls
over HTTP, where the server and the client add their own floor.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import arguments, fresh_catalogue, report  # noqa: E402

PASSWORD = "bench-password"
PROTOCOL = {"scheme": "file", "hostname": "localhost", "port": 0, "prefix": "/floor/", "impl": "posix"}
FILES = [{"scope": "floor", "name": f"f{index}", "bytes": 1, "adler32": "0cc737eb"} for index in range(10)]


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0], {"calls": 2000}, {"calls": 200})
    url = fresh_catalogue(args.db)

    from sqlalchemy import event

    from datamgmt.api.app import create_app
    from datamgmt.core.bootstrap import bootstrap
    from datamgmt.core.db.session import get_engine, transaction
    from datamgmt.core.did import add_collection
    from datamgmt.core.scope import add_scope

    with transaction(url) as session:
        bootstrap(session, "root", PASSWORD, "21.T99999")
        add_scope(session, "floor", "root")
        for index in range(100):
            add_collection(session, "floor", f"ds{index:03d}", "DATASET", "root")
    client = create_app(database_url=url).test_client()
    login = client.get(
        "/auth/userpass",
        headers={"X-Rucio-Account": "root", "X-Rucio-Username": "root", "X-Rucio-Password": PASSWORD},
    )
    headers = {"X-Rucio-Auth-Token": login.headers["X-Rucio-Auth-Token"], "X-Rucio-Account": "root"}
    rule_id = _with_data(client, headers)
    kinds: list[tuple[str, Callable[[int], object], int]] = [
        ("ping", lambda i: client.get("/ping"), 200),
        ("whoami", lambda i: client.get("/accounts/whoami", headers=headers), 303),
        ("get_did", lambda i: client.get(f"/dids/floor/ds{i % 100:03d}", headers=headers), 200),
        (
            "rse_attr",
            lambda i: client.post(
                f"/rses/FLOOR/attr/k{i % 100}", headers=headers, data=json.dumps({"value": i})
            ),
            201,
        ),
        ("rse", lambda i: client.get("/rses/FLOOR", headers=headers), 200),
        ("did_meta", lambda i: client.get("/dids/floor/ds000/meta", headers=headers), 200),
        ("rule", lambda i: client.get(f"/rules/{rule_id}", headers=headers), 200),
        ("did_rules", lambda i: client.get("/dids/floor/ds000/rules", headers=headers), 200),
        ("file_replicas", lambda i: client.get(f"/replicas/floor/f{i % 10}", headers=headers), 200),
    ]
    statements = [0]
    event.listen(
        get_engine(url), "before_cursor_execute", lambda *_args: statements.__setitem__(0, statements[0] + 1)
    )
    print(
        f"# {url.split('://')[0]}: {args.calls} calls of each kind, one thread, Flask test client", flush=True
    )
    for name, call, status in kinds:
        for index in range(min(50, args.calls)):  # warm: compiled statements, prepared plans, caches
            _expect(call(index), status, name)
        statements[0] = 0
        wall, cpu = time.perf_counter(), time.process_time()
        for index in range(args.calls):
            _expect(call(index), status, name)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        report(name, args.calls, wall)
        print(
            f"#   {name}: {wall / args.calls * 1000:.3f} ms wall, {cpu / args.calls * 1000:.3f} ms CPU,"
            f" {statements[0] / args.calls:.1f} statements per call"
        )


def _with_data(client: object, headers: dict[str, str]) -> str:
    """RSE ``FLOOR`` with a protocol, ten files on it in ``floor:ds000`` with a metadata key, and a
    rule on that dataset where the data is; returns the rule's id."""

    def post(path: str, body: object) -> object:
        response = client.post(path, headers=headers, data=json.dumps(body))  # type: ignore[attr-defined]
        _expect(response, 201, f"POST {path}")
        return response

    post("/rses/FLOOR", {})
    post("/rses/FLOOR/protocols/file", PROTOCOL)
    post("/accounts/root/limits/local/FLOOR", {"bytes": 10**12})
    post("/replicas", {"rse": "FLOOR", "files": FILES, "ignore_availability": True})
    post("/dids/floor/ds000/dids", {"dids": [{"scope": "floor", "name": f["name"]} for f in FILES]})
    post("/dids/floor/ds000/meta/run", {"value": 5})
    rule = {
        "dids": [{"scope": "floor", "name": "ds000"}],
        "account": "root",
        "copies": 1,
        "rse_expression": "FLOOR",
    }
    created = post("/rules/", rule)
    return str(json.loads(created.data)[0])  # type: ignore[attr-defined]


def _expect(response: object, status: int, name: str) -> None:
    code = getattr(response, "status_code", None)
    if code != status:
        raise SystemExit(f"{name}: HTTP {code}, expected {status}: {getattr(response, 'data', b'')[:300]!r}")


if __name__ == "__main__":
    main()
