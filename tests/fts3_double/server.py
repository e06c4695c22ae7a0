"""Serve the FTS3 double over HTTP on 127.0.0.1, in a background thread or as a process."""

from __future__ import annotations

import argparse
import json
import logging
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from .app import create_app
from .double import Fts3Double


class Fts3DoubleServer:
    """A running double: ``url`` to talk to, ``double`` to steer and inspect, ``stop()`` to end it."""

    def __init__(self, double: Fts3Double | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.double = double or Fts3Double()
        self._server: BaseWSGIServer = make_server(host, port, create_app(self.double), threaded=True)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fts3-double-http", daemon=True
        )

    def start(self) -> Fts3DoubleServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
        self.double.close()

    def __enter__(self) -> Fts3DoubleServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fts3_double", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--workers", type=int, default=4, help="parallel copies")
    parser.add_argument("--instant", action="store_true", help="finish jobs at submission without copying")
    parser.add_argument("--forbid-local-files", action="store_true", help="reject file:// like real FTS")
    parser.add_argument(
        "--gfal2-options",
        type=json.loads,
        default=None,
        help='JSON {"GROUP": {"KEY": value}} applied to every gfal2 context',
    )
    parser.add_argument("--require-token", default=None, help="bearer token every request must carry")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    double = Fts3Double(
        workers=args.workers,
        instant=args.instant,
        allow_local_files=not args.forbid_local_files,
        gfal2_options=args.gfal2_options,
        require_token=args.require_token,
    )
    server = Fts3DoubleServer(double, args.host, args.port)
    print(f"fts3 double listening on {server.url}", flush=True)
    try:
        server._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        double.close()
