"""A list whose stream the server cuts short (its database dropped mid-listing, a worker
killed) is a retriable ``ServiceUnavailable`` for the caller, never a bare ``requests``
exception that would end the CLI with a traceback and that no caller retries."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from datamgmt.client.config import ClientConfig
from datamgmt.client.transport import Transport
from datamgmt.exceptions import ServiceUnavailable


class CutShort(BaseHTTPRequestHandler):
    """A chunked JSON stream of one line, then the connection closes before the last chunk."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-json-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        line = b'{"row": 1}\n'
        self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
        self.wfile.write(b'40\r\n{"row": 2')  # a chunk announced longer than what comes
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), CutShort)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=10)


def test_a_stream_cut_short_is_service_unavailable(server: str) -> None:
    transport = Transport(ClientConfig(url=server, account="root", username="root", password="pw"))
    rows = transport.stream("GET", "/replicas/list", auth=False)
    assert next(rows) == {"row": 1}
    with pytest.raises(ServiceUnavailable, match="cut short"):
        next(rows)
