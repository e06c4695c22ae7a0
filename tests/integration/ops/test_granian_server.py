"""``datamgmt-server --server granian`` with two workers, over real HTTP: the same answers as under
gunicorn (Rucio's headers and error format, streamed listings, 413 before reading a large
body), gunicorn's access lines, /metrics summed over both workers, a suspended account's
token refused by whichever worker answers, and a clean stop on SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT_PASSWORD
from tests.servers.endpoints import free_ports

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[3]
#: gunicorn's default access line: ``h l u t "r" s b "f" "a"``.
ACCESS_LINE = re.compile(r'^127\.0\.0\.1 - - \[[^\]]+\] "(\S+) (\S+) HTTP/1\.1" (\d{3}) (\d+) "-" "(.*)"$')


class Server:
    """The running server: one request per fresh connection, so both workers take turns."""

    def __init__(self, port: int, log: Path) -> None:
        self.port, self.log = port, log

    def call(
        self, method: str, path: str, body: bytes | None = None, **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers={"User-Agent": "granian-test", **headers})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def login(self, account: str, username: str, password: str) -> str:
        status, headers, _ = self.call(
            "GET",
            "/auth/userpass",
            **{"X-Rucio-Account": account, "X-Rucio-Username": username, "X-Rucio-Password": password},
        )
        assert status == 200, status
        return headers["x-rucio-auth-token"]


@pytest.fixture
def server(db: str, root: str, tmp_path: Path) -> Iterator[Server]:
    (port,) = free_ports(1)
    log = tmp_path / "server.log"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bin" / "datamgmt-server"), "--server", "granian"]
        + ["--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PROMETHEUS_MULTIPROC_DIR": "",
            "DATAMGMT_API_METRICS_PUBLIC": "true",
        },
    )
    running = Server(port, log)
    try:
        _wait_for(running, process)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    assert process.returncode == 0, log.read_text()[-2000:]


def _wait_for(server: Server, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, server.log.read_text()[-2000:]
        try:
            if server.call("GET", "/ping")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError("datamgmt-server --server granian did not answer within 60 s")


def _access_lines(server: Server) -> list[tuple[str, str, str, str]]:
    lines = []
    for line in server.log.read_text().splitlines():
        match = ACCESS_LINE.match(line)
        if match and match.group(5) == "granian-test":
            lines.append((match.group(1), match.group(2), match.group(3), match.group(4)))
    return lines


def test_rucio_answers_and_gunicorn_access_lines(server: Server) -> None:
    status, headers, ping = server.call("GET", "/ping")
    assert status == 200 and set(json.loads(ping)) == {"version"}
    token = server.login("root", "root", ROOT_PASSWORD)

    status, headers, body = server.call("GET", "/accounts/whoami", **{"X-Rucio-Auth-Token": token})
    assert status == 303 and headers["location"].endswith("root")
    status, headers, _ = server.call("GET", "/accounts/root", **{"X-Rucio-Auth-Token": "not-a-token"})
    assert (status, headers["exceptionclass"]) == (401, "CannotAuthenticate")
    status, headers, body = server.call(
        "POST", "/rses/GRANIAN_DISK", b"{not json", **{"X-Rucio-Auth-Token": token}
    )
    assert status == 400 and headers["exceptionclass"] == "ValueError"
    assert json.loads(body)["ExceptionClass"] == "ValueError"

    for rse in ("GRANIAN_DISK", "GRANIAN_TAPE"):
        assert server.call("POST", f"/rses/{rse}", b"{}", **{"X-Rucio-Auth-Token": token})[0] == 201
    status, headers, body = server.call("GET", "/rses/", **{"X-Rucio-Auth-Token": token})
    assert status == 200 and headers["content-type"] == "application/x-json-stream"
    assert {json.loads(line)["rse"] for line in body.splitlines()} == {"GRANIAN_DISK", "GRANIAN_TAPE"}

    # A body over [api] max_body_bytes is refused from its Content-Length alone.
    status, headers, _ = server.call(
        "POST", "/rses/GRANIAN_X", b"", **{"X-Rucio-Auth-Token": token, "Content-Length": str(1 << 40)}
    )
    assert status == 413

    time.sleep(0.5)  # the lines are written when each body ends, after the client has read it
    lines = _access_lines(server)
    assert ("GET", "/ping", "200", str(len(ping))) in lines
    assert ("GET", "/accounts/whoami", "303") in [line[:3] for line in lines]
    assert ("GET", "/rses/", "200", str(len(body))) in lines


def test_metrics_are_summed_over_both_workers(server: Server) -> None:
    before = _ping_count(server)
    for _ in range(40):
        assert server.call("GET", "/ping")[0] == 200
    assert _ping_count(server) == before + 40


def _ping_count(server: Server) -> float:
    status, _, body = server.call("GET", "/metrics")
    assert status == 200
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.decode().splitlines()
        if line.startswith("datamgmt_api_requests_total{") and 'endpoint="/ping"' in line
    )


def test_a_suspended_accounts_token_is_refused_by_every_worker(server: Server) -> None:
    root = {"X-Rucio-Auth-Token": server.login("root", "root", ROOT_PASSWORD)}
    body = json.dumps({"type": "USER", "email": "alice@example.org"}).encode()
    assert server.call("POST", "/accounts/alice", body, **root)[0] == 201
    identity = json.dumps(
        {"identity": "alice", "authtype": "USERPASS", "email": "a@example.org", "password": "alice-pw-123456"}
    )
    assert server.call("POST", "/accounts/alice/identities", identity.encode(), **root)[0] == 201
    alice = {"X-Rucio-Auth-Token": server.login("alice", "alice", "alice-pw-123456")}
    # Each worker remembers the validated token (twenty fresh connections reach both).
    assert {server.call("GET", "/accounts/alice", **alice)[0] for _ in range(20)} == {200}

    suspend = json.dumps({"status": "SUSPENDED"}).encode()
    assert server.call("PUT", "/accounts/alice", suspend, **root)[0] == 200
    assert {server.call("GET", "/accounts/alice", **alice)[0] for _ in range(20)} == {401}
