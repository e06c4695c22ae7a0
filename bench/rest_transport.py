"""How ``rest_workload`` talks HTTP: the stock client's own library, or the least client work.

Kept apart from the workload so that its steps read as the calls they make.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests


class Answer:
    """A whole answer: status, headers and body."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status_code, self.headers, self.content = status, headers, body

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class RequestsTransport:
    """``requests``, as rucio-clients 41 uses it: what a stock client waits for per call."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.base, self.http = base, requests.Session()
        self.http.headers.update(headers)
        self.headers = self.http.headers

    def call(self, method: str, path: str, data: str | None, headers: dict[str, str] | None = None) -> Answer:
        response = self.http.request(method, f"{self.base}{path}", data=data, headers=headers)
        return Answer(response.status_code, response.headers, response.content)

    @contextmanager
    def lines(self, method: str, path: str, data: str | None) -> Iterator[tuple[Answer, Iterator[bytes]]]:
        with self.http.request(method, f"{self.base}{path}", data=data, stream=True) as response:
            head = Answer(response.status_code, response.headers, b"")
            if response.status_code >= 300:
                head.content = response.content
            yield head, response.iter_lines()


class LeanTransport:
    """One kept-alive ``http.client`` connection: the same requests with the least client work.

    ``requests`` costs about 0.4 ms of client CPU per call on this machine (docs/performance.md),
    which for a one-row GET is more than either server's own work; this transport measures
    the servers rather than the client.  Same methods, paths, bodies and headers."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        parts = urlsplit(base)
        self.prefix = parts.path.rstrip("/")
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80)
        self.headers = dict(headers)

    def _exchange(
        self, method: str, path: str, data: str | None, headers: dict[str, str] | None
    ) -> http.client.HTTPResponse:
        """Send the request and read the answer's head.  A kept-alive connection the server has
        closed meanwhile (its idle timeout, while ``--against`` ran the other server's step)
        fails before the server read anything: the request goes again on a new connection."""
        merged = {**self.headers, **(headers or {})}
        body = data.encode() if data is not None else None
        if body is None and method in ("POST", "PUT"):
            merged["Content-Length"] = "0"
        try:
            self.connection.request(method, self.prefix + path, body=body, headers=merged)
            return self.connection.getresponse()
        except ConnectionError:  # http.client's RemoteDisconnected is one
            self.connection.close()
            self.connection.request(method, self.prefix + path, body=body, headers=merged)
            return self.connection.getresponse()

    def call(self, method: str, path: str, data: str | None, headers: dict[str, str] | None = None) -> Answer:
        response = self._exchange(method, path, data, headers)
        return Answer(response.status, response.headers, response.read())

    @contextmanager
    def lines(self, method: str, path: str, data: str | None) -> Iterator[tuple[Answer, Iterator[bytes]]]:
        response = self._exchange(method, path, data, None)
        head = Answer(response.status, response.headers, b"")
        if response.status >= 300:
            head.content = response.read()
        try:
            yield head, _split_lines(response)
        finally:
            response.read()


def _split_lines(response: http.client.HTTPResponse) -> Iterator[bytes]:
    """The body's lines as blocks arrive (``readline`` on a chunked body reads byte by byte:
    4 ms of client CPU for a 7 KB answer)."""
    pending = b""
    while block := response.read1(65536):
        pending += block
        *complete, pending = pending.split(b"\n")
        yield from (line.rstrip(b"\r") for line in complete)
    if pending:
        yield pending


TRANSPORTS = {"lean": LeanTransport, "requests": RequestsTransport}
