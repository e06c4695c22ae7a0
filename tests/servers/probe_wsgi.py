"""``python -m tests.servers.probe_wsgi PORT THREADS LINGER``: gunicorn with datamgmt's worker
class around a WSGI app that only says who answered, for tests of the worker itself.

The app answers ``{"thread": ..., "read": ..., "cpu": ...}``: the answering thread's id, how
many body bytes it read (``/ignore-body`` reads none, so the server must drain them), and the CPU
time that thread has used.  ``/sleep`` holds its thread for half a second first.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from gunicorn.app.base import BaseApplication

from datamgmt.api import gunicorn_worker


def probe(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    read = 0
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(0.5)
    if environ["PATH_INFO"] != "/ignore-body":
        read = len(environ["wsgi.input"].read())
    body = json.dumps({"thread": threading.get_ident(), "read": read, "cpu": time.thread_time()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class ProbeServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.settings.items():
            self.cfg.set(name, value)

    def load(self) -> Callable[..., Iterable[bytes]]:
        return probe


if __name__ == "__main__":
    port, threads, linger = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    gunicorn_worker.LINGER = linger
    # The busy-wait tests must not depend on how loaded the test host is.
    gunicorn_worker.cpu_to_spare = lambda own_load=0.0: True
    ProbeServer(
        {
            "bind": f"127.0.0.1:{port}",
            "workers": 1,
            "threads": threads,
            "worker_class": "datamgmt.api.gunicorn_worker.KeepServingWorker",
            "keepalive": 5,
            "graceful_timeout": 10,
            # Ready is said on stdout, not found by connecting: a connection made only to see
            # the server up could still be in a pool thread when a test's request comes, and
            # then that request is not alone in its worker.
            "when_ready": lambda _arbiter: print("ready", flush=True),
        }
    ).run()
