"""The client repeats a 503 a bounded number of times, after the server's Retry-After."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from datamgmt.client.config import ClientConfig
from datamgmt.client.transport import MAX_RETRY_WAIT, UNAVAILABLE_RETRIES, Transport, retry_wait
from datamgmt.exceptions import DatabaseException


class Flaky(BaseHTTPRequestHandler):
    """Answers ``unavailable`` 503s (Retry-After ``retry_after``), then 200 with a JSON body."""

    unavailable = 0
    retry_after = "1"
    seen: list[float] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        Flaky.seen.append(time.monotonic())
        if len(Flaky.seen) <= Flaky.unavailable:
            body = json.dumps({"ExceptionClass": "DatabaseException", "ExceptionMessage": "lost"}).encode()
            self.send_response(503)
            self.send_header("Retry-After", Flaky.retry_after)
            self.send_header("ExceptionClass", "DatabaseException")
        else:
            body = b'{"version": "x"}'
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Flaky.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=10)


def transport(url: str) -> Transport:
    return Transport(ClientConfig(url=url, account="root", username="root", password="pw"))


def test_a_503_is_repeated_after_retry_after_until_it_succeeds(server: str) -> None:
    Flaky.unavailable, Flaky.retry_after = 2, "1"
    assert transport(server).json("GET", "/ping", auth=False) == {"version": "x"}
    assert len(Flaky.seen) == 3
    assert all(later - earlier >= 1 for earlier, later in zip(Flaky.seen, Flaky.seen[1:], strict=False))


def test_retries_are_bounded_then_the_error_is_raised(server: str) -> None:
    Flaky.unavailable, Flaky.retry_after = 100, "0"
    with pytest.raises(DatabaseException):
        transport(server).json("GET", "/ping", auth=False)
    assert len(Flaky.seen) == UNAVAILABLE_RETRIES + 1


def test_retry_wait_honours_the_header_capped_and_backs_off_without_it() -> None:
    def answer(retry_after: str | None) -> requests.Response:
        response = requests.Response()
        if retry_after is not None:
            response.headers["Retry-After"] = retry_after
        return response

    assert retry_wait(answer("3"), 0) == 3
    assert retry_wait(answer("86400"), 0) == MAX_RETRY_WAIT
    assert [retry_wait(answer(None), attempt) for attempt in range(3)] == [1, 2, 4]
    assert retry_wait(answer("Wed, 21 Oct 2026 07:28:00 GMT"), 1) == 2
