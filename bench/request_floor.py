"""The per-request floor in process: what each layer of a small call costs, without HTTP.

``python -m bench.request_floor [--db URL] [--calls N]`` runs the real app through Flask's
test client on a fresh catalogue and times ``--calls`` calls of each kind, one layer more
each time, so the differences say where a small call's time goes:

* ``ping``: Flask, routing and the after-request hooks (public, no catalogue);
* ``whoami``: the same plus authentication from the token cache (no statement);
* ``get_did``: plus one read-only unit with one SELECT (``GET /dids/{scope}/{name}``);
* ``rse_attr``: plus one write unit (``POST /rses/{rse}/attr/{key}``, one ``INSERT … SELECT``).

Prints ``name size seconds rate peak_rss`` per kind, then the wall and CPU milliseconds
per call (CPU: this process's, so the database server's work shows only in the wall time).
``rest_workload.py`` measures the same calls over HTTP, where gunicorn and the client add
their own floor.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from bench.common import arguments, fresh_catalogue, report

PASSWORD = "bench-password"


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0], {"calls": 2000}, {"calls": 200})
    url = fresh_catalogue(args.db)

    from datamgmt.api.app import create_app
    from datamgmt.core.bootstrap import bootstrap
    from datamgmt.core.db.session import transaction
    from datamgmt.core.did import add_collection
    from datamgmt.core.rse import add_rse
    from datamgmt.core.scope import add_scope

    with transaction(url) as session:
        bootstrap(session, "root", PASSWORD, "21.T99999")
        add_rse(session, "FLOOR")
        add_scope(session, "floor", "root")
        for index in range(100):
            add_collection(session, "floor", f"ds{index:03d}", "DATASET", "root")
    client = create_app(database_url=url).test_client()
    login = client.get(
        "/auth/userpass",
        headers={"X-Rucio-Account": "root", "X-Rucio-Username": "root", "X-Rucio-Password": PASSWORD},
    )
    headers = {"X-Rucio-Auth-Token": login.headers["X-Rucio-Auth-Token"], "X-Rucio-Account": "root"}
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
    ]
    print(
        f"# {url.split('://')[0]}: {args.calls} calls of each kind, one thread, Flask test client", flush=True
    )
    for name, call, status in kinds:
        for index in range(min(50, args.calls)):  # warm: compiled statements, prepared plans, caches
            _expect(call(index), status, name)
        wall, cpu = time.perf_counter(), time.process_time()
        for index in range(args.calls):
            _expect(call(index), status, name)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        report(name, args.calls, wall)
        print(
            f"#   {name}: {wall / args.calls * 1000:.3f} ms wall, {cpu / args.calls * 1000:.3f} ms CPU per call"
        )


def _expect(response: object, status: int, name: str) -> None:
    code = getattr(response, "status_code", None)
    if code != status:
        raise SystemExit(f"{name}: HTTP {code}, expected {status}: {getattr(response, 'data', b'')[:300]!r}")


if __name__ == "__main__":
    main()
