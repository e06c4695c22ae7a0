"""The API when PostgreSQL kills its backends (``pg_terminate_backend``), between and during requests.

A call either succeeds or is a 503 ``DatabaseException`` with ``Retry-After``, never a 500;
a read, or a unit that had not run a statement, is repeated by the server on a fresh
connection, and the datamgmt client repeats a 503 after ``Retry-After``.

To kill a backend *during* a request deterministically, the test holds a lock the request
needs, waits until the API's backend is seen waiting on it, terminates that backend and
lets the lock go.  The API's engine has its own ``application_name``, so only its
backends are terminated.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url

from datamgmt.api.app import create_app
from datamgmt.client.client import Client
from datamgmt.client.config import ClientConfig
from datamgmt.core import did, scope
from tests.conftest import ROOT_PASSWORD
from tests.serving import serve

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not os.environ.get("DATAMGMT_TEST_DB_URL", "").startswith("postgresql"),
        reason="DATAMGMT_TEST_DB_URL is unset: terminating backends needs PostgreSQL",
    ),
]

APPLICATION = "datamgmt-api-drops"


@dataclass
class Api:
    url: str
    admin: Connection

    def backends(self, waiting_on_lock: bool = False) -> list[int]:
        """The API's backend pids (only those blocked on a lock, if asked); this run's database
        only, so that a concurrent run or parallel worker on the same server is never touched."""
        query = (
            "SELECT pid FROM pg_stat_activity WHERE application_name = :app AND datname = current_database()"
        )
        if waiting_on_lock:
            query += " AND wait_event_type = 'Lock'"
        return list(self.admin.execute(text(query), {"app": APPLICATION}).scalars())

    def terminate(self, pids: list[int]) -> None:
        """Terminate the backends and wait until they are gone, as a server restart would leave them."""
        for pid in pids:
            self.admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        deadline = time.monotonic() + 10
        while set(pids) & set(self.backends()):
            assert time.monotonic() < deadline, "terminated backends did not go away"
            time.sleep(0.02)

    def wait_until_blocked(self) -> list[int]:
        deadline = time.monotonic() + 20
        while not (blocked := self.backends(waiting_on_lock=True)):
            assert time.monotonic() < deadline, "the request never waited on the lock"
            time.sleep(0.02)
        return blocked


@pytest.fixture
def api(db_url: str, root: str) -> Iterator[Api]:
    """A live API on its own engine (own pool, own ``application_name``) over the test catalogue."""
    server_db = make_url(db_url).update_query_dict({"application_name": APPLICATION})
    admin_engine = create_engine(db_url, isolation_level="AUTOCOMMIT")
    with (
        serve(create_app(database_url=server_db.render_as_string(hide_password=False))) as url,
        admin_engine.connect() as admin,
    ):
        yield Api(url, admin)
    admin_engine.dispose()


@pytest.fixture
def token(api: Api) -> str:
    response = requests.get(
        f"{api.url}/auth/userpass",
        timeout=30,
        headers={"X-Rucio-Account": "root", "X-Rucio-Username": "root", "X-Rucio-Password": ROOT_PASSWORD},
    )
    assert response.status_code == 200
    return response.headers["X-Rucio-Auth-Token"]


@pytest.fixture
def dataset(session, root: str) -> tuple[str, str]:
    scope.add_scope(session, "data", "root")
    did.add_collections(session, [{"scope": "data", "name": "ds", "type": "DATASET"}], "root")
    session.commit()
    return "data", "ds"


def call(api: Api, token: str, method: str, path: str, body: object = None) -> requests.Response:
    return requests.request(
        method,
        api.url + path,
        headers={"X-Rucio-Auth-Token": token},
        timeout=60,
        data=None if body is None else json.dumps(body),
    )


def assert_clean(response: requests.Response, *ok: int) -> None:
    """Success, or the retriable 503 in Rucio's error format; never a 500."""
    if response.status_code == 503:
        assert response.headers["ExceptionClass"] == "DatabaseException"
        assert int(response.headers["Retry-After"]) >= 1
        assert json.loads(response.content)["ExceptionClass"] == "DatabaseException"
    else:
        assert response.status_code in ok, (response.status_code, response.text)


def while_locked(
    api: Api, db_url: str, lock_sql: str, request: Callable[[], requests.Response]
) -> requests.Response:
    """Send ``request`` while the test holds a lock it needs; kill the API's blocked backend; release."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as holder, ThreadPoolExecutor(1) as pool:
            holder.execute(text(lock_sql))
            pending: Future[requests.Response] = pool.submit(request)
            api.terminate(api.wait_until_blocked())
            holder.rollback()
            return pending.result(timeout=60)
    finally:
        engine.dispose()


def test_calls_after_the_backends_were_killed_between_requests_succeed(api, token, dataset):
    # Fill the API's pool with idle connections, then kill them all, as a database restart does.
    for _ in range(3):
        assert call(api, token, "GET", "/dids/data/ds/meta").status_code == 200
    assert api.backends()
    api.terminate(api.backends())
    # Each call finds its pooled connection dead before any statement ran, and takes a fresh one.
    assert call(api, token, "GET", "/dids/data/ds/meta").status_code == 200
    assert call(api, token, "POST", "/dids/data/ds/meta/project", {"value": "drops"}).status_code == 201
    api.terminate(api.backends())
    assert call(api, token, "POST", "/dids/data/ds2", {"type": "DATASET"}).status_code == 201
    assert call(api, token, "GET", "/dids/data/ds/meta").json()["project"] == "drops"


def test_a_read_whose_backend_is_killed_mid_request_is_repeated_on_a_fresh_connection(
    api, db_url, token, dataset
):
    # ACCESS EXCLUSIVE blocks even plain reads; the view's unit has run statements when it reaches ``dids``.
    response = while_locked(
        api,
        db_url,
        "LOCK TABLE dids IN ACCESS EXCLUSIVE MODE",
        lambda: call(api, token, "GET", "/dids/data/ds/meta"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "ds"


def test_a_write_whose_backend_is_killed_mid_request_is_a_503_and_changes_nothing(
    api, db_url, token, dataset, session
):
    response = while_locked(
        api,
        db_url,
        "SELECT 1 FROM dids WHERE scope = 'data' AND name = 'ds' FOR UPDATE",
        lambda: call(api, token, "POST", "/dids/data/ds/meta/project", {"value": "lost"}),
    )
    assert response.status_code == 503, response.text
    assert_clean(response)
    assert "nothing was changed" in response.headers["ExceptionMessage"]
    assert "project" not in call(api, token, "GET", "/dids/data/ds/meta").json()


def test_the_client_repeats_the_503_after_retry_after_and_succeeds(api, db_url, dataset, tmp_path: Path):
    client = Client(
        ClientConfig(
            url=api.url,
            account="root",
            username="root",
            password=ROOT_PASSWORD,
            token_file=str(tmp_path / "token"),
        )
    )
    client.get_metadata("data", "ds")  # logs in before the lock, so only the write waits on it
    started = time.monotonic()
    while_locked(
        api,
        db_url,
        "SELECT 1 FROM dids WHERE scope = 'data' AND name = 'ds' FOR UPDATE",
        lambda: client.set_metadata("data", "ds", "project", "kept"),
    )  # type: ignore[arg-type,return-value]
    assert time.monotonic() - started >= 1  # it waited Retry-After before repeating
    assert client.get_metadata("data", "ds")["project"] == "kept"


def test_many_calls_while_backends_are_killed_never_answer_500(api, token, dataset):
    stop = threading.Event()
    kills = 0

    def killer() -> None:
        nonlocal kills
        while not stop.is_set():
            pids = api.backends()
            for pid in pids:
                api.admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            kills += len(pids)
            time.sleep(0.05)

    thread = threading.Thread(target=killer)
    thread.start()
    statuses = []
    try:
        for i in range(60):
            read = call(api, token, "GET", "/dids/data/ds/meta")
            assert_clean(read, 200)
            write = call(api, token, "POST", "/dids/data/ds/meta/k", {"value": i})
            assert_clean(write, 201)
            statuses += [read.status_code, write.status_code]
    finally:
        stop.set()
        thread.join()
    assert kills > 0 and statuses.count(200) + statuses.count(201) > 0


def test_the_stock_rucio_client_retries_the_503(api, db_url, dataset, tmp_path: Path):
    config = tmp_path / "rucio.cfg"
    config.write_text(
        f"[client]\nrucio_host = {api.url}\nauth_host = {api.url}\nauth_type = userpass\n"
        f"username = root\npassword = {ROOT_PASSWORD}\naccount = root\n"
        f"auth_token_file_path = {tmp_path / 'token'}\n"
    )
    env = {**os.environ, "RUCIO_CONFIG": str(config), "HOME": str(tmp_path), "RUCIO_ACCOUNT": "root"}
    code = (
        "from rucio.client.didclient import DIDClient\n"
        "client = DIDClient()\n"  # logs in now, before the lock is taken
        "input()\n"
        "client.set_metadata('data', 'ds', 'project', 'stock')\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def set_metadata() -> int:
        _out, err = process.communicate("\n", timeout=60)
        assert process.returncode == 0, err
        assert "server returned 503" in err  # the stock client's own back-off message
        return process.returncode

    try:
        while not Path(tmp_path / "token").exists():
            assert process.poll() is None, process.communicate()[1]
            time.sleep(0.1)
        while_locked(
            api, db_url, "SELECT 1 FROM dids WHERE scope = 'data' AND name = 'ds' FOR UPDATE", set_metadata
        )  # type: ignore[arg-type]
    finally:
        process.kill()
    assert (
        Client(
            ClientConfig(
                url=api.url,
                account="root",
                username="root",
                password=ROOT_PASSWORD,
                token_file=str(tmp_path / "dm-token"),
            )
        ).get_metadata("data", "ds")["project"]
        == "stock"
    )
