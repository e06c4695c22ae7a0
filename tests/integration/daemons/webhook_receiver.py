"""A real HTTP server on 127.0.0.1 that receives hermes's webhook POSTs, for the tests.

It records every request (headers and body) and answers what the test scripts: by default
200, a queue of statuses for the next requests, or a fixed status for given message ids.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def message(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    #: Statuses for the next requests, in order (then 200 again).
    next_statuses: list[int] = field(default_factory=list)
    #: A fixed answer for the messages with these ids.
    status_for_id: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: bytes) -> int:
        with self.lock:
            if self.next_statuses:
                return self.next_statuses.pop(0)
        return self.status_for_id.get(json.loads(body)["id"], 200)

    def accepted(self) -> Counter[int]:
        """How many times each message id was answered with a 2xx."""
        return Counter(r.message["id"] for r in self.requests if 200 <= r.status < 300)


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = receiver.answer(body)
            with receiver.lock:
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body, status))
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads ``receiver.requests`` instead."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/datamgmt"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
